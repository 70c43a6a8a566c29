"""portique/duration.py, the one Go-duration parser: a table, then every entry
(and more) checked against Go's own time.ParseDuration (Debian's Go, as
tests/unit/cli/gotemplate/test_cli_gotemplate_go.py uses it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from portique.duration import InvalidDuration, parse_duration, parse_seconds

ORACLE = Path(__file__).parents[1] / "support" / "duration_oracle.go"
S = 1_000_000_000

GOOD = [
    ("0", 0),
    ("-0", 0),
    ("+0", 0),
    ("5s", 5 * S),
    ("300ms", 300_000_000),
    ("-1.5h", -5400 * S),
    ("+2h45m", 9900 * S),
    ("1m30s", 90 * S),
    (".5s", S // 2),
    ("1.s", S),
    ("1.1s", 1_100_000_000),
    ("250us", 250_000),
    ("250\u00b5s", 250_000),  # µ, MICRO SIGN
    ("250\u03bcs", 250_000),  # μ, GREEK SMALL LETTER MU
    ("7ns", 7),
    ("0.000000001s", 1),
    ("0000000000000000000000001s", S),
    ("1.00000000000000000000000001s", S),
    ("2562047h47m16.854775807s", (1 << 63) - 1),
    ("-2562047h47m16.854775808s", -(1 << 63)),
]
BAD = [
    "",
    "5",
    "s",
    "5x",
    "1s ",
    " 1s",
    "abc",
    ".s",
    "-",
    "+",
    "1..2s",
    "1.5.3s",
    "1e3s",
    "1S",
    "²s",
    "1h-1m",
    "2562047h47m16.854775808s",
    "10000000000000000000000h",
    "9223372036854775808ns",
]


@pytest.mark.parametrize(("text", "ns"), GOOD)
def test_parses(text: str, ns: int) -> None:
    assert parse_duration(text) == ns
    assert parse_seconds(text) == pytest.approx(ns / 1e9)


@pytest.mark.parametrize("text", BAD)
def test_refuses(text: str) -> None:
    with pytest.raises(InvalidDuration, match="invalid duration"):
        parse_duration(text)


def test_messages_name_what_is_wrong() -> None:
    with pytest.raises(InvalidDuration, match=r"invalid duration '5': missing unit"):
        parse_duration("5")
    with pytest.raises(InvalidDuration, match=r"unknown unit 'x'"):
        parse_duration("5x")
    with pytest.raises(InvalidDuration, match=r"out of range"):
        parse_duration("9223372036854775808ns")


def test_a_huge_fraction_is_bounded() -> None:
    # Digits beyond int64 precision are dropped, as Go does (then rounded in
    # floating point, as there): no giant int, no float overflow.
    assert parse_duration("1." + "9" * 100_000 + "s") == 2 * S


def test_agrees_with_go(tmp_path: Path) -> None:
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    assert os.path.exists(go), "Go is needed (apt-get install golang-go; scripts/setup.sh does it)"
    env = dict(os.environ, GOCACHE=str(tmp_path / "cache"), GO111MODULE="off", GOFLAGS="")
    env.setdefault("HOME", str(tmp_path))
    binary = tmp_path / "oracle"
    subprocess.run(
        [go, "build", "-o", str(binary), str(ORACLE)],
        env=env,
        check=True,
        cwd=tmp_path,
        timeout=280,
    )
    extra = ["1h1m1s1ms1us1ns", "-.5m", "3.000000000001ms", "1.9999999999999999999h", "0.0s"]
    extra += ["1." + "9" * 5000 + "s", "0." + "0" * 30 + "1h", "1" * 30 + "ns"]
    inputs = [t for t, _ in GOOD] + BAD + extra
    proc = subprocess.run(
        [str(binary)], input=json.dumps(inputs), capture_output=True, text=True, check=True
    )
    for text, go_says in zip(inputs, json.loads(proc.stdout), strict=True):
        try:
            ours: int | None = parse_duration(text)
        except InvalidDuration:
            ours = None
        assert ours == (go_says["ns"] if go_says["ok"] else None), text
