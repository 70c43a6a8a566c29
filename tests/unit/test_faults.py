"""portique.faults: crash points that kill their process when the environment names them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from support import faultpoints

PROGRAM = """
from portique import faults
print("before", flush=True)
faults.point("test.one")
print("after one", flush=True)
faults.point("test.two")
print("after two", flush=True)
faults.point("test.two")
print("end", flush=True)
"""


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PORTIQUE_FAULT")}
    return subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={**full, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unset_points_do_nothing() -> None:
    p = run({})
    assert p.returncode == 0
    assert p.stdout.split("\n")[-2] == "end"


def test_a_named_point_kills_with_sigkill(tmp_path: Path) -> None:
    marker = tmp_path / "hit"
    p = run({"PORTIQUE_FAULT": "test.one", "PORTIQUE_FAULT_HIT": str(marker)})
    assert p.returncode == -signal.SIGKILL
    assert p.stdout == "before\n"
    assert marker.read_text().strip().isdigit()


def test_the_nth_pass(tmp_path: Path) -> None:
    p = run({"PORTIQUE_FAULT": "test.two@2"})
    assert p.returncode == -signal.SIGKILL
    assert p.stdout == "before\nafter one\nafter two\n"


def test_another_name_or_a_pass_never_reached_does_nothing() -> None:
    assert run({"PORTIQUE_FAULT": "test.three"}).returncode == 0
    assert run({"PORTIQUE_FAULT": "test.one@2"}).returncode == 0


def test_points_in_the_source_are_literal_unique_and_have_a_scenario() -> None:
    calls = faultpoints.calls()
    assert calls, "no faults.point() calls found"
    names = [name for name, _, _ in calls]
    where = {name: f"{path.name}:{line}" for name, path, line in calls}
    assert "" not in names, "a faults.point() argument that is not a string literal"
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert dupes == [], f"points used twice: {dupes}"
    for name in names:
        assert re.fullmatch(r"[a-z]+\.[a-z][a-z-]*[a-z]", name), f"bad point name {name}"
        assert faultpoints.scenario_of(name) is not None, f"no scenario reaches {where[name]}"
    # Every operation the harness must cover has points.
    covered = {faultpoints.scenario_of(n) for n in names}
    assert covered == {"pull", "load", "build", "run", "run-rm", "rm", "rmi"}
