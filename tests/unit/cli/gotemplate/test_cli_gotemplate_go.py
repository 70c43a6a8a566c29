"""The expected strings of support/gotemplate_cases.py, checked against Go itself.

Runs support/gotemplate_oracle.go with Debian's Go (golang-go, installed by
scripts/setup.sh) over every case that Go 1.19 knows, and compares Go's
output and error with what the table says. A failure here means the table
(and so possibly portique) disagrees with real Go.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.gotemplate_cases import CASES, OPTIONS

ORACLE = Path(__file__).parents[3] / "support" / "gotemplate_oracle.go"


@pytest.fixture(scope="module")
def go_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    assert os.path.exists(go), "Go is needed (apt-get install golang-go; scripts/setup.sh does it)"
    work = tmp_path_factory.mktemp("gooracle")
    inputs = [{"tmpl": t, "data": d, "missingkey": ""} for t, d, _ in CASES] + [
        {"tmpl": t, "data": d, "missingkey": opt} for opt, cs in OPTIONS.items() for t, d, _ in cs
    ]
    env = dict(os.environ, GOCACHE=str(work / "cache"), GO111MODULE="off", GOFLAGS="")
    env.setdefault("HOME", str(work))
    binary = work / "oracle"
    subprocess.run(
        [go, "build", "-o", str(binary), str(ORACLE)], env=env, check=True, cwd=work, timeout=280
    )
    proc = subprocess.run(
        [str(binary)],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    results: list[dict[str, str]] = json.loads(proc.stdout)
    assert len(results) == len(inputs)
    return results


def _expected() -> list[tuple[str, str, str]]:
    return list(CASES) + [c for cs in OPTIONS.values() for c in cs]


@pytest.mark.parametrize("index", range(len(_expected())))
def test_case_matches_go(go_results: list[dict[str, str]], index: int) -> None:
    template, _, expected = _expected()[index]
    got = go_results[index]
    go_says = "ERR:" + got["err"] if got["err"] else got["out"]
    assert go_says == expected, template
