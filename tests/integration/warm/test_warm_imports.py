"""A warm start imports nothing: the fork-server (portique/warm/preload.py) has
already imported what create, start, exec, stop and rm use, in its workers and
in the monitors its zygote forks (and their child that creates the
container). A module imported late costs its import on the command's critical
path, and its pages are the fork's own.

How it is seen: a server started with PYTHONVERBOSE=1 passes the flag to its
forks, which print `import 'name'` to their stderr for each module they
import: the client's stderr for a worker, monitor.err for a monitor."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar


def imported(stderr: str) -> list[str]:
    return [line.split()[1] for line in stderr.splitlines() if line.startswith("import ")]


@pytest.fixture(scope="module")
def verbose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("warm-imports")
    with engine(base, f"pq-wimp-{os.getpid()}") as pq:
        env = {k: v for k, v in pq.env.items() if not k.startswith(("PORTIQUE_WARM", "PYTHON"))}
        cold = Portique(dict(env, PORTIQUE_WARM="off"), pq.root, pq.run_root)
        cold.ok("import", str(image_tar(base)), "busybox:latest")
        Portique(dict(env, PORTIQUE_WARM="off", PYTHONVERBOSE="1"), pq.root, pq.run_root).ok(
            "warm", "start"
        )
        try:
            yield Portique(env, pq.root, pq.run_root)
        finally:
            cold.ok("warm", "stop")


def monitor_imports(pq: Portique) -> list[str]:
    found = []
    for err in Path(pq.run_root, "containers").glob("*/monitor.err"):
        found += imported(err.read_text(errors="replace"))
    return found


def test_the_server_was_started_verbose(verbose: Portique) -> None:
    # Else the tests below would pass for want of output.
    log = Path(verbose.run_root, "warm.log").read_text(errors="replace")
    assert "import 'portique.engine.lifecycle'" in log


@pytest.mark.parametrize(
    "network", [["--network", "none"], []], ids=["network-none", "default-bridge"]
)
def test_run_exec_stop_rm_import_nothing(verbose: Portique, network: list[str]) -> None:
    late: dict[str, list[str]] = {}
    out = verbose("run", "--rm", *network, "busybox", "true")
    assert out.returncode == 0, out.stderr
    late["run --rm"] = imported(out.stderr)
    out = verbose("run", "-d", "--name", "imp", *network, "busybox", "sleep", "600")
    assert out.returncode == 0, out.stderr
    late["run -d"] = imported(out.stderr)
    out = verbose("exec", "imp", "true")
    assert out.returncode == 0, out.stderr
    late["exec"] = imported(out.stderr)
    out = verbose("stop", "-t", "1", "imp")
    assert out.returncode == 0, out.stderr
    late["stop"] = imported(out.stderr)
    late["monitor"] = monitor_imports(verbose)
    out = verbose("rm", "imp")
    assert out.returncode == 0, out.stderr
    late["rm"] = imported(out.stderr)
    assert {k: v for k, v in late.items() if v} == {}


def test_pull_and_a_cached_build_import_nothing(verbose: Portique, tmp_path: Path) -> None:
    # Their modules come after the zygote's fork (commands/warm.py's
    # PRELOAD_WORKERS): in the workers, not in the monitors.
    from support import oci_build as ob
    from support.registry import start_registry

    late: dict[str, list[str]] = {}
    with start_registry(tmp_path, mode="plain") as reg:
        ob.push_image(reg, "bb", "latest", ob.busybox_image())
        out = verbose("pull", "-q", f"{reg.host}/bb:latest")
        assert out.returncode == 0, out.stderr
        late["pull"] = imported(out.stderr)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("f\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f /f\nENV A=1\n")
    verbose.ok("build", "-q", "-t", "imp-build", str(ctx))
    out = verbose("build", "-q", "-t", "imp-build", str(ctx))
    assert out.returncode == 0, out.stderr
    late["cached build"] = imported(out.stderr)
    assert {k: v for k, v in late.items() if v} == {}
