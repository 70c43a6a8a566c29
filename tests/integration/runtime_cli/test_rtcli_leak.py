"""Nothing leaks: 200 create/start/delete cycles through the library, a few
through the binary, and a container sees only fds 0-2 (plus those passed)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from support.rtcli_bundle import (
    RuntimeCLI,
    mount_points,
    open_fds,
    portique_cgroups,
    unique_id,
)

LIBRARY_CYCLES = 200
BINARY_CYCLES = 15


def _wait_stopped(rt: object, cid: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = str(rt.state(cid).status)  # type: ignore[attr-defined]
        if status == "stopped":
            break
        time.sleep(0.005)
    return status


def _portique_cgroup_children() -> set[Path]:
    base = Path("/sys/fs/cgroup")
    out: set[Path] = set()
    for hierarchy in [base, *base.iterdir()]:
        parent = hierarchy / "portique"
        if parent.is_dir():
            out |= {p for p in parent.iterdir() if p.is_dir()}
    return out


def test_library_cycles_leak_nothing(tmp_path: Path, bundle: Callable[..., Path]) -> None:
    from portique.runtime import Runtime

    b = bundle("/bin/true")
    rt = Runtime(tmp_path / "lib-state")
    # One warm-up cycle: lazily imported modules and caches open what they keep.
    warm = unique_id("warm")
    rt.create(warm, b)
    rt.start(warm)
    assert _wait_stopped(rt, warm) == "stopped"
    rt.delete(warm)

    mounts, fds, cgroups = mount_points(), open_fds(), _portique_cgroup_children()
    started = time.monotonic()
    for i in range(LIBRARY_CYCLES):
        cid = f"leak-{i}-{os.getpid()}"
        rt.create(cid, b)
        rt.start(cid)
        assert _wait_stopped(rt, cid) == "stopped", cid
        rt.delete(cid)
        assert time.monotonic() - started < 240, f"only {i} cycles in 240 s"
    assert mount_points() == mounts
    assert open_fds() == fds
    assert _portique_cgroup_children() == cgroups
    assert rt.list() == []
    assert list((tmp_path / "lib-state").iterdir()) == []
    # Every container init was reaped: no zombie children of ours.
    zombies = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                zombies.append(entry.name)
    assert zombies == []


def test_binary_cycles_leak_nothing(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle("/bin/true")
    mounts, cgroups = mount_points(), _portique_cgroup_children()
    for _ in range(BINARY_CYCLES):
        cid = unique_id("bin")
        rt("create", "-b", str(b), cid)
        rt("start", cid)
        assert rt.wait_status(cid, "stopped")["status"] == "stopped"
        rt("delete", cid)
        assert portique_cgroups(cid) == []
    for _ in range(BINARY_CYCLES):
        rt("run", "-b", str(b), unique_id("binrun"))
    assert mount_points() == mounts
    assert _portique_cgroup_children() == cgroups
    assert rt("list", "-q").stdout == ""


def test_container_sees_only_stdio_fds(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle("sh", "-c", "ls /proc/$$/fd")
    # An inheritable fd open in the caller must not reach the container.
    r, w = os.pipe()
    os.set_inheritable(r, True)
    try:
        proc = rt("run", "-b", str(b), unique_id(), pass_fds=(r,))
        assert proc.stdout.split() == ["0", "1", "2"]
        # ... unless passed on purpose with --preserve-fds.
        os.dup2(r, 3)
        proc = rt("run", "--preserve-fds", "1", "-b", str(b), unique_id(), pass_fds=(3,))
        assert proc.stdout.split() == ["0", "1", "2", "3"]
    finally:
        os.close(r)
        os.close(w)
        try:
            os.close(3)
        except OSError:
            pass


def test_exec_sees_only_stdio_fds(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    proc = rt("exec", cid, "sh", "-c", "ls /proc/$$/fd")
    assert proc.stdout.split() == ["0", "1", "2"]
