"""linux.resources the host cannot honour are refused at create, in one line
naming the field, leaving nothing behind; memory.kernelTCP is enforced
where the kernel has it (cgroup v1's memory.kmem.tcp.limit_in_bytes).

Marked `vm`: run here (cgroup v1) and in the pure cgroup v2 VM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portique.runtime.cgroups import detect, hierarchies
from support.rtcli_bundle import RuntimeCLI, one_line_error, portique_cgroups, unique_id

pytestmark = pytest.mark.vm

V2 = detect() == "v2"


def _resources(**section: Any) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        spec["linux"].setdefault("resources", {}).update(section)

    return edit


def _controller_mounted(name: str) -> bool:
    return not V2 and any(name in ctrls for _, ctrls in hierarchies())


def _refused(rt: RuntimeCLI, b: Path, needle: str) -> None:
    cid = unique_id()
    proc = rt("create", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 1
    assert needle in one_line_error(proc.stderr)
    assert rt("list", "-q").stdout == ""
    assert portique_cgroups(cid) == []


def test_kernel_memory_limit_is_refused(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    # Linux >= 5.16 takes a write to memory.kmem.limit_in_bytes and ignores it.
    b = bundle(edit=_resources(memory={"limit": 256 << 20, "kernel": 64 << 20}))
    _refused(rt, b, "linux.resources.memory.kernel: ")


def test_kernel_tcp_limit(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle(edit=_resources(memory={"kernelTCP": 16 << 20}))
    if V2:
        _refused(rt, b, "linux.resources.memory.kernelTCP: cgroup v2 has no kernel TCP")
        return
    cid = unique_id()
    rt("create", "--bundle", str(b), cid)
    try:
        files = [d / "memory.kmem.tcp.limit_in_bytes" for d in portique_cgroups(cid)]
        files = [f for f in files if f.exists()]
        assert len(files) == 1
        assert int(files[0].read_text()) == 16 << 20
    finally:
        rt("delete", "--force", cid)


def test_net_cls_class_id(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle(edit=_resources(network={"classID": 0x100001}))
    if not _controller_mounted("net_cls"):
        _refused(rt, b, "linux.resources.network")
        return
    cid = unique_id()
    rt("create", "--bundle", str(b), cid)
    try:
        files = [d / "net_cls.classid" for d in portique_cgroups(cid)]
        assert [int(f.read_text()) for f in files if f.exists()] == [0x100001]
    finally:
        rt("delete", "--force", cid)


def test_v1_only_memory_knobs_on_v2(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle(edit=_resources(memory={"swappiness": 10}))
    if V2:
        _refused(rt, b, "linux.resources.memory.swappiness: cgroup v2 has no")
        return
    cid = unique_id()
    rt("create", "--bundle", str(b), cid)
    try:
        files = [d / "memory.swappiness" for d in portique_cgroups(cid)]
        assert [int(f.read_text()) for f in files if f.exists()] == [10]
    finally:
        rt("delete", "--force", cid)


def test_update_refuses_what_it_cannot_honour(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "--bundle", str(bundle()), cid)
    try:
        proc = rt("update", "--kernel-memory", "64m", cid, check=False)
        assert proc.returncode == 1
        assert "memory.kernel: " in one_line_error(proc.stderr)
        assert rt.state(cid)["status"] == "running"
    finally:
        rt("delete", "--force", cid)
