"""docs/kubernetes: the containerd config, the RuntimeClass and the pod agree.

tests/compat/test_compat_cri.py runs the handler of containerd-config.toml;
here, without root: the TOML parses, its handler is the one the RuntimeClass
names, the pod asks for that RuntimeClass, and the page shows these files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs"


def _field(text: str, key: str) -> str:
    """A top-level or indented `key: value` of a small YAML manifest."""
    match = re.search(rf"^\s*{re.escape(key)}:\s*(\S+)\s*$", text, re.MULTILINE)
    assert match, f"no {key} in manifest"
    return match.group(1).strip("\"'")


def test_handler_runtime_class_and_pod_agree() -> None:
    config = tomllib.loads((DOCS / "kubernetes/containerd-config.toml").read_text())
    runtimes = config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    handler = runtimes["portique"]
    assert handler["runtime_type"] == "io.containerd.runc.v2"
    assert handler["options"]["BinaryName"].endswith("/portique-runtime")
    assert handler["options"]["SystemdCgroup"] is False  # refused by portique-runtime

    runtime_class = (DOCS / "kubernetes/runtimeclass.yaml").read_text()
    assert _field(runtime_class, "apiVersion") == "node.k8s.io/v1"
    assert _field(runtime_class, "kind") == "RuntimeClass"
    assert _field(runtime_class, "handler") in runtimes
    pod = (DOCS / "kubernetes/pod.yaml").read_text()
    assert _field(pod, "kind") == "Pod"
    assert _field(pod, "runtimeClassName") == _field(runtime_class, "name")


def test_the_page_shows_the_files_as_they_are() -> None:
    page = (DOCS / "kubernetes.md").read_text()
    for name in ("containerd-config.toml", "runtimeclass.yaml", "pod.yaml"):
        body = (DOCS / "kubernetes" / name).read_text()
        # Each file's meaningful lines (not its comments) appear on the page.
        for line in body.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line in page, f"docs/kubernetes.md lacks {name}'s line {line!r}"
