from __future__ import annotations

import json
from pathlib import Path

import pytest

from portique.engine import logs
from portique.engine.logfile import MAX_LINE, LogWriter, rfc3339_nano
from portique.errors import InvalidArgument


def test_writer_splits_lines_and_streams(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(str(path))
    w.write("stdout", b"hello\nwor")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"ld\n\xff\n")
    w.write("stdout", b"partial")
    w.close()
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "hello\n"),
        ("stderr", "oops\n"),
        ("stdout", "world\n"),
        ("stdout", "\ufffd\n"),
        ("stdout", "partial"),
    ]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in recs)


def test_long_lines_split(tmp_path: Path) -> None:
    path = tmp_path / "l.log"
    w = LogWriter(str(path))
    w.write("stdout", b"x" * (MAX_LINE * 2 + 5) + b"\n")
    w.close()
    recs = list(logs.read_records(str(path)))
    assert [len(r.log) for r in recs] == [MAX_LINE, MAX_LINE, 6]


def test_tail_and_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    w = LogWriter(str(path))
    for i in range(5):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    with open(path, "a") as f:
        f.write('{"log":"torn')
    assert [r.log for r in logs.tail_records(str(path), 2)] == ["3\n", "4\n"]
    assert len(logs.tail_records(str(path), -1)) == 5
    assert logs.tail_records(str(path), 0) == []


def test_rfc3339_roundtrip() -> None:
    ns = 1_700_000_000_123_456_789
    assert rfc3339_nano(ns) == "2023-11-14T22:13:20.123456789Z"
    assert logs.parse_rfc3339(rfc3339_nano(ns)) == ns
    assert logs.parse_rfc3339("2023-11-14T23:13:20+01:00") == 1_700_000_000 * 10**9


def test_since() -> None:
    assert logs.parse_since("10m", now=1000.0) == int(400 * 1e9)
    assert logs.parse_since("1h30m", now=10000.0) == int((10000 - 5400) * 1e9)
    assert logs.parse_since("1700000000") == 1_700_000_000 * 10**9
    assert logs.parse_since("2023-11-14") == logs.parse_rfc3339("2023-11-14T00:00:00Z")
    with pytest.raises(InvalidArgument):
        logs.parse_since("yesterday")


def test_follow_stops_when_not_running(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    w = LogWriter(str(path))
    w.write("stdout", b"a\n")
    calls = iter([True, False])

    def running() -> bool:
        w.write("stdout", b"b\n")
        return next(calls)

    got = [r.log for r in logs.follow_file(str(path), 0, running, poll=0)]
    w.close()
    assert got[:2] == ["a\n", "b\n"]


def test_tail_reads_from_the_end_of_a_large_log(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    w = LogWriter(str(path))
    for i in range(20000):
        w.write("stdout" if i % 2 else "stderr", f"line {i} {'x' * 40}\n".encode())
    w.close()
    last = logs.tail_records(str(path), 3)
    assert [r.log.split()[1] for r in last] == ["19997", "19998", "19999"]
    assert [r.stream for r in last] == ["stdout", "stderr", "stdout"]
    assert len(logs.tail_records(str(path), 5000)) == 5000
    assert logs.tail_records(str(tmp_path / "missing"), 3) == []
