"""Issue 9, item 4: `kill -9` of `portique build` during a RUN step.

The step's overlay mount, its runtime state, its `build-...` cgroups (and the
step's processes, still running) used to stay forever: no later command
removed them. Now the build's journal entry names them, and the next build,
`system prune` or any prune undoes them; never those of a build still running.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.crash_engine import PORTIQUE, Engine, leaks
from support.rtcli_bundle import portique_cgroups

SLOW = "FROM busybox\nRUN echo $((40 + 2))-running; sleep 1000\n"
QUICK = "FROM busybox\nRUN echo done > /done\n"


def context(tmp: Path, name: str, dockerfile: str) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "Dockerfile").write_text(dockerfile)
    return d


def kill_during_run(e: Engine, ctx: Path) -> list[str]:
    """Start a build, SIGKILL it once its RUN step runs; the step's runtime ids."""
    p = subprocess.Popen(
        [PORTIQUE, "build", str(ctx)],
        env=e.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert p.stdout is not None
    out = b""
    deadline = time.monotonic() + 60
    try:
        # "42-running" is printed by the step itself (the Dockerfile line says $((40 + 2))).
        while b"42-running" not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"the RUN step never started: {out.decode()}"
            ready, _, _ = select.select([p.stdout], [], [], left)
            if ready:
                chunk = os.read(p.stdout.fileno(), 4096)
                assert chunk, f"build ended early: {out.decode()}"
                out += chunk
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
        p.stdout.close()
    assert p.returncode == -signal.SIGKILL
    ids = [n for n in os.listdir(e.run_root / "runtime") if n.startswith("build-")]
    # What the kill leaves: the step's mount, runtime state, cgroups.
    assert len(ids) == 1
    assert portique_cgroups(ids[0])
    assert any(m.startswith(str(e.root / "build")) for m in mounts())
    e.seen.update(ids)
    return ids


def mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@pytest.mark.parametrize(
    "follow_up",
    [
        pytest.param(["build", "-q", "-t", "next", "{quick}"], id="build"),
        # Also under a pure cgroup v2 kernel (scripts/test.sh's VM pass).
        pytest.param(["system", "prune", "-f"], id="system-prune", marks=pytest.mark.vm),
        pytest.param(["container", "prune", "-f"], id="container-prune"),
        pytest.param(["image", "prune", "-f"], id="image-prune"),
    ],
)
def test_a_build_killed_during_run_is_undone_by_the_next_command(
    engine: Engine, tmp_path: Path, follow_up: list[str]
) -> None:
    (step,) = kill_during_run(engine, context(tmp_path, "slow", SLOW))
    quick = str(context(tmp_path, "quick", QUICK))
    engine.ok(*[quick if a == "{quick}" else a for a in follow_up])
    assert portique_cgroups(step) == []
    assert not os.path.exists(engine.run_root / "runtime" / step)
    assert not [m for m in mounts() if m.startswith(str(engine.root))]
    assert os.listdir(engine.root / "build") == []
    # And the root is as clean as ever once pruned.
    engine.ok("system", "prune", "-a", "-f")
    assert leaks(engine) == []


def test_recovery_leaves_a_live_build_alone(engine: Engine, tmp_path: Path) -> None:
    """`system prune` (every recovery) while a build's RUN step runs: the step keeps its
    mount and container, and the build completes."""
    dockerfile = "FROM busybox\nRUN echo $((40 + 2))-running; sleep 1000; echo woke > /woke\n"
    p = subprocess.Popen(
        [PORTIQUE, "build", "-q", "-t", "alive", str(context(tmp_path, "live", dockerfile))],
        env=engine.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        steps: list[str] = []
        while not steps:
            assert time.monotonic() < deadline, "the RUN step never started"
            assert p.poll() is None
            runtime = engine.run_root / "runtime"
            steps = (
                [n for n in os.listdir(runtime) if n.startswith("build-")]
                if runtime.is_dir()
                else []
            )
            time.sleep(0.01)  # poll interval
        (step,) = steps
        sleeper = wait_for_sleep(step, deadline)
        engine.ok("system", "prune", "-f")
        engine.ok("container", "prune", "-f")
        assert p.poll() is None
        assert portique_cgroups(step)
        assert any(m.startswith(str(engine.root / "build")) for m in mounts())
        os.kill(sleeper, signal.SIGKILL)  # the step goes on and succeeds
        assert p.wait(120) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
        assert p.stdout is not None
        p.stdout.close()
    assert engine.ok("run", "--rm", "--network", "none", "alive", "cat", "/woke") == "woke\n"
    engine.seen.add(step)
    engine.ok("system", "prune", "-a", "-f")
    assert leaks(engine) == []


def wait_for_sleep(step: str, deadline: float) -> int:
    """The pid of the step's `sleep 1000` (in its cgroup), once it runs."""
    while True:
        assert time.monotonic() < deadline, "the step's sleep never started"
        for cg in portique_cgroups(step):
            procs = cg / "cgroup.procs"
            if not procs.exists():
                continue
            for pid in procs.read_text().split():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmd.startswith(b"sleep\0"):
                    return int(pid)
        time.sleep(0.01)  # poll interval
