"""Fault injection: kill portique at named points of pull, load, build, run, rm and rmi,
then check that the next commands succeed and that nothing is leaked.

The points are the `faults.point("...")` calls in the source (support/faultpoints.py).
Each run tries a subset chosen by a seed: one point of each operation, then others
at random, $PORTIQUE_FAULT_COUNT in all (default 12, "all" for every point). The
seed is in each test's id and every failure message (and in pytest's header when
this directory is named on the command line); reproduce a run with
PORTIQUE_FAULT_SEED=<seed>.

For each point: a fresh engine root; the operation, killed (SIGKILL) at that point;
the operation again, and a use of its result, which must succeed; every container
removed and `system prune -a --volumes`; then no mount, cgroup, monitor, veth,
nftables rule, database row or file may be left (support/crash_engine.leaks).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from support import faultpoints
from support.crash_engine import Engine, leaks
from support.rootless_cli import wait_for

SEED, COUNT = faultpoints.settings()
POINTS = faultpoints.chosen(SEED, COUNT)
REPRO = f"(reproduce: PORTIQUE_FAULT_SEED={SEED})"
PUBLISH = ("-p", "127.0.0.1::8080")

DOCKERFILE = """\
FROM busybox
RUN echo built > /built
COPY file.txt /data/file.txt
RUN cat /data/file.txt > /copied
"""


def faulted(e: Engine, point: str, *args: str) -> None:
    """Run `portique args` with `point` armed; the point must be reached (and, for the
    CLI's own points, kill it)."""
    hit = e.root.parent / "fault-hit"
    hit.unlink(missing_ok=True)
    p = e(*args, fault=point, hit=hit)
    cmd = f"portique {' '.join(args)}"
    if point.startswith("monitor."):
        # A monitor's point may come after the command has its answer (the
        # purge of a --rm container): wait for the monitor to reach it.
        wait_for(hit.exists)
    assert hit.exists(), f"{point} not reached by `{cmd}` (exit {p.returncode}: {p.stderr}) {REPRO}"
    if not point.startswith("monitor."):  # those kill the monitor, not the CLI
        assert p.returncode == -signal.SIGKILL, f"{cmd}: exit {p.returncode} {REPRO}"
    e.note_ids()


def scenario_pull(e: Engine, point: str, image: str) -> None:
    faulted(e, point, "pull", "-q", image)
    e.ok("pull", "-q", image)
    e.ok("run", "--rm", "--network", "none", image, "true")


def scenario_load(e: Engine, point: str, image: str, archive: Path) -> None:
    faulted(e, point, "load", "-q", "-i", str(archive))
    e.ok("load", "-q", "-i", str(archive))
    e.ok("run", "--rm", "--network", "none", image, "true")


def scenario_build(e: Engine, point: str, context: Path) -> None:
    faulted(e, point, "build", "-q", "-t", "built", str(context))
    e.ok("build", "-q", "-t", "built", str(context))
    out = e.ok("run", "--rm", "--network", "none", "built", "cat", "/built", "/copied")
    assert out == "built\nhello\n"


def scenario_run(e: Engine, point: str) -> None:
    faulted(e, point, "run", "-d", "--name", "c1", *PUBLISH, "busybox", "sleep", "600")
    e.ok("run", "-d", "--name", "c2", *PUBLISH, "busybox", "sleep", "600")
    if e("inspect", "c1").returncode == 0:
        # Left "created" (or running): it must start (or already run) as any other.
        e.ok("start", "c1")
        assert e.ok("inspect", "-f", "{{.State.Status}}", "c1").strip() == "running"
    e.note_ids()


def scenario_run_rm(e: Engine, point: str) -> None:
    faulted(e, point, "run", "--rm", *PUBLISH, "busybox", "true")
    e.ok("run", "--rm", *PUBLISH, "busybox", "true")
    assert e.ok("ps", "-aq") == ""


def scenario_rm(e: Engine, point: str) -> None:
    e.ok("run", "-d", "--name", "c1", *PUBLISH, "busybox", "sleep", "600")
    e.note_ids()
    faulted(e, point, "rm", "-f", "c1")
    e.ok("rm", "-f", "c1")
    e.ok("run", "-d", "--name", "c1", *PUBLISH, "busybox", "sleep", "600")
    e.note_ids()


def scenario_rmi(e: Engine, point: str, image: str) -> None:
    e.ok("pull", "-q", image)
    faulted(e, point, "rmi", image)
    # Gone for every command at once (its rows went in one transaction)...
    assert image.rsplit(":", 1)[0] not in e.ok("images", "--format", "{{.Repository}}")
    e.ok("run", "--rm", "--network", "none", "busybox", "true")
    # ...and its files by the next recovery (the leak check after the prune).


# The seed is in every test id, so a failure line alone says how to reproduce it.
@pytest.mark.parametrize("point", [pytest.param(p, id=f"{p}-seed{SEED}") for p in POINTS])
def test_crash_at(
    point: str, engine: Engine, remote_image: str, saved_archive: Path, tmp_path: Path
) -> None:
    scenario = faultpoints.scenario_of(point)
    if scenario == "pull":
        scenario_pull(engine, point, remote_image)
    elif scenario == "load":
        scenario_load(engine, point, remote_image, saved_archive)
    elif scenario == "build":
        context = tmp_path / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "file.txt").write_text("hello\n")
        scenario_build(engine, point, context)
    elif scenario == "run":
        scenario_run(engine, point)
    elif scenario == "run-rm":
        scenario_run_rm(engine, point)
    elif scenario == "rmi":
        scenario_rmi(engine, point, remote_image)
    else:
        assert scenario == "rm", f"no scenario for {point}"
        scenario_rm(engine, point)
    ids = engine.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        engine.ok("rm", "-f", *ids)
    engine.ok("system", "prune", "-a", "-f", "--volumes")
    left = leaks(engine)
    assert left == [], f"after a crash at {point}, left behind: {left} {REPRO}"


def test_the_leak_check_sees_what_it_looks_for(engine: Engine) -> None:
    """A running container is everything the check looks for: it must see it all."""
    engine.ok("run", "-d", "--name", "c1", *PUBLISH, "busybox", "sleep", "600")
    engine.note_ids()
    kinds = {item.split(" ")[0] for item in leaks(engine)}
    assert {"mount", "cgroup", "process", "veth", "nft", "file", "run"} <= kinds
    assert any(item.endswith("rows in containers") for item in leaks(engine))
    engine.ok("rm", "-f", "c1")
    engine.ok("system", "prune", "-a", "-f", "--volumes")
    assert leaks(engine) == []
