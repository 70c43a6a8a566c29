"""Bad input: one line on stderr, exit 1, and nothing left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.rtcli_bundle import (
    RuntimeCLI,
    mount_points,
    one_line_error,
    portique_cgroups,
    unique_id,
)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("args-not-a-list", _set("process.args", "sh"), "process.args"),
    ("bad-cwd", _set("process.cwd", "relative"), "process.cwd"),
    (
        "unknown-namespace",
        lambda s: s["linux"]["namespaces"].append({"type": "bogus"}),
        "bogus",
    ),
    (
        "mapping-without-userns",
        _set("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        "uidMappings",
    ),
    ("missing-rootfs", _set("root.path", "/nonexistent/rootfs"), "rootfs"),
    ("no-oci-version", lambda s: s.pop("ociVersion"), "ociVersion"),
]


@pytest.mark.parametrize(("name", "edit", "needle"), CASES, ids=[c[0] for c in CASES])
def test_invalid_config_is_one_line_and_leaves_nothing(
    rt: RuntimeCLI,
    bundle: Callable[..., Path],
    name: str,
    edit: Callable[[dict[str, Any]], None],
    needle: str,
    watched: tuple[str, ...],
) -> None:
    b = bundle(edit=edit)
    cid = unique_id(name)
    before = mount_points(*watched)
    proc = rt("create", "-b", str(b), cid, check=False)
    assert proc.returncode == 1
    line = one_line_error(proc.stderr)
    assert needle in line, line
    assert rt("list", "-q").stdout == ""
    assert not (rt.root / cid).exists()
    assert portique_cgroups(cid) == []
    assert mount_points(*watched) == before
    # The same line went to the JSON log.
    entry = json.loads(rt.log.read_text().splitlines()[-1])
    assert entry["level"] == "error"
    assert needle in entry["msg"]


def test_malformed_json(rt: RuntimeCLI, tmp_path: Path) -> None:
    b = tmp_path / "broken"
    b.mkdir()
    (b / "config.json").write_text('{"ociVersion": "1.1.0", "process": ')
    cid = unique_id()
    proc = rt("run", "-b", str(b), cid, check=False)
    assert proc.returncode == 1
    assert "json" in one_line_error(proc.stderr).lower()
    assert not (rt.root / cid).exists()


def test_missing_config(rt: RuntimeCLI, tmp_path: Path) -> None:
    proc = rt("create", "-b", str(tmp_path), unique_id(), check=False)
    assert proc.returncode == 1
    assert "config.json" in one_line_error(proc.stderr)


def test_duplicate_id_is_refused_and_keeps_the_first(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    b = bundle()
    cid = unique_id()
    rt("create", "-b", str(b), cid)
    first = rt.state(cid)
    proc = rt("create", "-b", str(b), cid, check=False)
    assert proc.returncode == 1
    assert cid in one_line_error(proc.stderr)
    assert rt.state(cid) == first
    rt("delete", "--force", cid)


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x" * 1025])
def test_bad_container_ids(rt: RuntimeCLI, bundle: Callable[..., Path], bad_id: str) -> None:
    proc = rt("create", "-b", str(bundle()), bad_id, check=False)
    assert proc.returncode == 1
    one_line_error(proc.stderr)
    assert not (rt.root.parent / "escape").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["state", "nope"],
        ["start", "nope"],
        ["kill", "nope", "KILL"],
        ["pause", "nope"],
        ["resume", "nope"],
        ["ps", "nope"],
        ["events", "--stats", "nope"],
        ["exec", "nope", "true"],
        ["kill", "nope", "NOTASIGNAL"],
    ],
)
def test_unknown_container(rt: RuntimeCLI, argv: list[str]) -> None:
    proc = rt(*argv, check=False)
    assert proc.returncode == 1
    one_line_error(proc.stderr)


def test_wrong_state_operations(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("create", "-b", str(bundle()), cid)
    for argv in (["pause", cid], ["resume", cid]):
        proc = rt(*argv, check=False)
        assert proc.returncode == 1
        one_line_error(proc.stderr)
    rt("start", cid)
    proc = rt("start", cid, check=False)
    assert proc.returncode == 1
    one_line_error(proc.stderr)
    rt("delete", "--force", cid)
