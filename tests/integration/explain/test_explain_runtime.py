"""`portique-runtime explain ID`: the same report for a container of the OCI
runtime; here one whose config.json shares the host's pid namespace, which
`portique run` cannot make yet (`--pid host`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kernel_facts import ns_inode, weakening
from support.rtcli_bundle import RuntimeCLI, make_bundle, unique_id


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(tmp_path / "state", tmp_path / "runtime.log")
    yield cli
    for cid in cli("list", "-q", check=False).stdout.split():
        cli("delete", "--force", cid, check=False)


def _no_pid_namespace(spec: dict[str, Any]) -> None:
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "pid"]


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_host_pid_namespace(rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", busybox_rootfs, edit=_no_pid_namespace)
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    pid = rt.state(cid)["pid"]
    r = json.loads(rt("explain", "--format", "json", cid).stdout)
    assert (r["target"]["runtime"], r["target"]["id"], r["target"]["pid"]) == (
        "portique-runtime",
        cid,
        pid,
    )
    pidns = {n["type"]: n for n in r["namespaces"]["items"]}["pid"]
    assert ns_inode(pid, "pid") == ns_inode("self", "pid") == pidns["inode"]
    assert pidns["shared"] is True
    # Its own processes come from its cgroup; each has the host's number inside.
    procs = r["processes"]
    assert procs["pid_ns_shared"] is True
    assert [(p["host_pid"], p["container_pid"]) for p in procs["items"]] == [(pid, pid)]
    # It sees the host's processes: this test's own among them.
    listing = rt("exec", cid, "sh", "-c", "echo /proc/[0-9]*").stdout.split()
    assert f"/proc/{os.getpid()}" in listing
    assert procs["visible"] > 1
    w = weakening(r, "host-pid")
    assert w["flag"] == "--pid host"
    assert '"pid"' in w["config"]
    # runc's default config has no seccomp section: unconfined, and said so.
    assert weakening(r, "seccomp")["flag"] == "--security-opt seccomp=unconfined"


def test_text_and_errors(rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", busybox_rootfs)
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    text = rt("explain", cid).stdout
    assert text.startswith(f"portique-runtime explain: container {cid[:12]}")
    assert "\nVERDICT" in text
    p = rt("explain", "no-such-id", check=False)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1
    assert "no-such-id" in p.stderr
    created = unique_id("explain")
    rt("create", "--bundle", str(bundle), created)
    p = rt("explain", created, check=False)
    assert p.returncode == 1
    assert "created but not started" in p.stderr
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    p = rt("explain", cid, check=False)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1
    assert "not running" in p.stderr
