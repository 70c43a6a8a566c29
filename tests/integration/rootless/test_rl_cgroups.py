"""A rootless engine's limits follow the cgroups the user has.

On a cgroup v2 host with a subtree delegated to the user (as systemd's
user@UID.service is; here a directory root makes and chowns, then starts the
user's commands in a leaf of it), `--memory`, `--cpus` and `--pids-limit`
are written to the container's cgroup below that subtree. Without one (this
cgroup v1 host) the same command is refused with one line. Marked `vm`: it
runs in the pure cgroup v2 VM too (scripts/test.sh), where the first half
holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.runtime.cgroups import detect
from support.rootless_cli import TEST_USER, UserPortique, busybox_tar, user_ids, wait_for

CGROUP = Path("/sys/fs/cgroup")
LIMITS = ("--memory", "64m", "--cpus", "0.5", "--pids-limit", "20")


@pytest.fixture
def delegated_engine() -> Iterator[UserPortique]:
    """portique-test's engine whose commands start in a leaf of a cgroup v2
    subtree delegated to it (cgroup v2 hosts only)."""
    uid, gid = user_ids(TEST_USER)
    top = CGROUP / f"pqr-deleg-{os.getpid()}"
    leaf = top / "leaf"
    top.mkdir()
    leaf.mkdir()
    for path in (top, leaf):
        for name in ("", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"):
            os.chown(path / name if name else path, uid, gid)
    engine = UserPortique.make(TEST_USER, "cg")
    engine.cgroup = leaf
    try:
        engine.ok("import", "--change", 'CMD ["/bin/sh"]', str(busybox_tar(engine.base)), "bb")
        yield engine
    finally:
        engine.close()
        # What the engine left (none if it cleaned up), deepest first; the
        # leaf empties once the user's processes have ended.
        for d in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if d.is_dir():
                wait_for(lambda d=d: not (d / "cgroup.procs").read_text().strip(), timeout=30)
                with contextlib.suppress(OSError):
                    d.rmdir()
        top.rmdir()


@pytest.mark.vm
def test_limits_need_a_cgroup_of_the_users(request: pytest.FixtureRequest) -> None:
    if detect() != "v2":
        # cgroup v1: nothing can be delegated to a user; refused, never dropped.
        upq: UserPortique = request.getfixturevalue("upq")
        p = upq("run", "--rm", *LIMITS, "--network", "none", "busybox", "true")
        assert p.returncode == 125
        assert p.stderr.startswith("portique: --memory: a rootless container cannot have")
        assert len(p.stderr.strip().splitlines()) == 1
        return
    engine: UserPortique = request.getfixturevalue("delegated_engine")
    out = engine.ok(
        "run",
        "--rm",
        *LIMITS,
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max",
        timeout=300,
    )
    assert out.splitlines() == ["67108864", "50000 100000", "20"]
    cid = engine.ok(
        "run", "-d", "--memory", "32m", "--network", "none", "bb", "sleep", "300", timeout=300
    ).strip()
    assert engine.cgroup is not None
    mine = engine.cgroup.parent / "portique" / cid
    assert (mine / "memory.max").read_text().strip() == str(32 << 20)
    pid = engine.ok("inspect", "-f", "{{.State.Pid}}", cid).strip()
    assert (mine / "cgroup.procs").read_text().split() == [pid]
    engine.ok("rm", "-f", cid, timeout=300)
    assert wait_for(lambda: not mine.exists(), timeout=60)
