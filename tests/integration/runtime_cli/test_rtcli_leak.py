"""Nothing leaks: 200 create/start/delete cycles through the library, a few
through the binary, and a container sees only fds 0-2 (plus those passed)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from support.rtcli_bundle import (
    RuntimeCLI,
    mount_points,
    open_fds,
    portique_cgroups,
    unique_id,
)

if TYPE_CHECKING:
    from portique.runtime import Runtime

LIBRARY_CYCLES = 200
BINARY_CYCLES = 15


def _wait_stopped(rt: Runtime, cid: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = str(rt.state(cid).status)
        if status == "stopped":
            break
        time.sleep(0.005)
    return status


def _portique_cgroup_children(prefix: str) -> set[Path]:
    """Our cgroups (named `prefix`...) under any portique/ parent; other test
    sessions may create and remove their own there meanwhile."""
    base = Path("/sys/fs/cgroup")
    out: set[Path] = set()
    for hierarchy in [base, *base.iterdir()]:
        parent = hierarchy / "portique"
        if parent.is_dir():
            out |= {p for p in parent.iterdir() if p.is_dir() and p.name.startswith(prefix)}
    return out


def test_library_cycles_leak_nothing(
    tmp_path: Path, bundle: Callable[..., Path], watched: tuple[str, ...]
) -> None:
    from portique.runtime import Runtime

    b = bundle("/bin/true")
    rt = Runtime(tmp_path / "lib-state")
    # One warm-up cycle: lazily imported modules and caches open what they keep.
    warm = unique_id("warm")
    rt.create(warm, b)
    rt.start(warm)
    assert _wait_stopped(rt, warm) == "stopped"
    rt.delete(warm)

    prefix = f"leak-{os.getpid()}-"
    mounts, fds = mount_points(*watched), open_fds()
    for i in range(LIBRARY_CYCLES):
        cid = f"{prefix}{i}"
        rt.create(cid, b)
        rt.start(cid)
        assert _wait_stopped(rt, cid) == "stopped", cid
        rt.delete(cid)
    assert mount_points(*watched) == mounts
    assert open_fds() == fds
    assert _portique_cgroup_children(prefix) == set()
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
                zombies.append(entry.name + ":" + (entry / "comm").read_text().strip())
    assert zombies == []


def test_binary_cycles_leak_nothing(
    rt: RuntimeCLI, bundle: Callable[..., Path], watched: tuple[str, ...]
) -> None:
    b = bundle("/bin/true")
    mounts = mount_points(*watched)
    for _ in range(BINARY_CYCLES):
        cid = unique_id("rtclibin")
        rt("create", "-b", str(b), cid)
        rt("start", cid)
        assert rt.wait_status(cid, "stopped")["status"] == "stopped"
        rt("delete", cid)
        assert portique_cgroups(cid) == []
    for _ in range(BINARY_CYCLES):
        rt("run", "-b", str(b), unique_id("rtclibinrun"))
    assert mount_points(*watched) == mounts
    assert _portique_cgroup_children("rtclibin") == set()
    assert rt("list", "-q").stdout == ""


def test_container_sees_only_stdio_fds(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    # `; true` keeps busybox sh from exec'ing ls in its place: ls then lists
    # the shell's fds, not its own open directory.
    b = bundle("sh", "-c", "ls /proc/$$/fd; true")
    # An inheritable fd open in the caller must not reach the container.
    r, w = os.pipe()
    try:
        proc = rt("run", "-b", str(b), unique_id(), pass_fds=(r,))
        assert proc.stdout.split() == ["0", "1", "2"]
        # ... unless passed on purpose with --preserve-fds: a shell puts the
        # pipe at fd 3 of the runtime (pytest's own fd 3 stays untouched).
        wrapper = ["/bin/sh", "-c", 'exec "$@" 3<&0 </dev/null', "sh"]
        argv = rt.argv("run", "--preserve-fds", "1", "-b", str(b), unique_id())
        done = subprocess.run(
            wrapper + argv, stdin=r, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", "1", "2", "3"]
    finally:
        os.close(r)
        os.close(w)


def test_exec_sees_only_stdio_fds(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    proc = rt("exec", cid, "sh", "-c", "ls /proc/$$/fd; true")
    assert proc.stdout.split() == ["0", "1", "2"]
