"""A short, seeded coverage-guided run of every target under atheris
(libFuzzer), from the tree's corpus: the same inputs on every run, so a
failure here is a finding, never chance. Longer hunts:
`.venv/bin/python tests/fuzz/atheris_main.py TARGET -max_total_time=600`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import targets

MAIN = Path(__file__).with_name("atheris_main.py")
# Inputs per target: the slow targets (a Dockerfile parse and plan, a layer
# unpacked to disk) get fewer, so the whole step stays within a minute.
SCALE = float(os.environ.get("PORTIQUE_ATHERIS_SCALE", "1"))
RUNS = {"dockerfile": 300, "tar": 300}
DEFAULT_RUNS = 3000


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_atheris(target: str, tmp_path: Path) -> None:
    runs = int(RUNS.get(target, DEFAULT_RUNS) * SCALE)
    proc = subprocess.run(
        [sys.executable, str(MAIN), target, f"-runs={runs}", "-seed=1", "-max_len=4096"],
        env={**os.environ, "FUZZ_WORKDIR": str(tmp_path)},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    crashes = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-"))
    )
    assert not crashes, f"atheris found {crashes} in {tmp_path}:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, proc.stderr[-3000:]
    # libFuzzer stops at the first check past -runs: "Done 302 runs" was seen
    # for -runs=300 (the tar target's coverage, and so its feedback, is not
    # the same from run to run), so what matters is that the runs were made.
    done = re.search(r"^Done (\d+) runs", proc.stderr, re.MULTILINE)
    assert done is not None, proc.stderr[-2000:]
    assert int(done.group(1)) >= runs, proc.stderr[-2000:]
