"""`exec` without -t relays stdio through pipes and still behaves as a plain
process would: exit codes, stdin EOF, the order of stdout and stderr, large
streams in both directions, a reader that goes away, stdin nobody reads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PORTIQUE = str(Path(sys.executable).parent / "portique")


@pytest.fixture(scope="module")
def box(pq: Any) -> Iterator[str]:
    cid = pq.ok("run", "-d", "--network", "none", "busybox", "sleep", "600").strip()
    yield cid
    pq("rm", "-f", cid)


def _exec(pq: Any, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([PORTIQUE, "exec", *args], env=pq.env, timeout=120, check=False, **kw)


def test_exit_codes(pq: Any, box: str) -> None:
    assert _exec(pq, box, "sh", "-c", "exit 7").returncode == 7
    assert _exec(pq, box, "sh", "-c", "kill -9 $$").returncode == 137
    missing = _exec(pq, box, "nosuch")
    assert missing.returncode == 127
    assert b"nosuch" in missing.stderr
    assert _exec(pq, box, "/etc").returncode == 126


def test_stdin_eof_and_large_streams(pq: Any, box: str) -> None:
    assert _exec(pq, "-i", box, "cat", input=b"hi\n").stdout == b"hi\n"
    data = bytes(range(256)) * 20_000  # 5 MB each way
    out = _exec(pq, "-i", box, "cat", input=data)
    assert out.returncode == 0
    assert out.stdout == data
    big = _exec(pq, box, "head", "-c", "10000000", "/dev/zero", stdin=subprocess.DEVNULL)
    assert len(big.stdout) == 10_000_000
    # Without -i the process reads /dev/null, whatever our stdin holds.
    assert _exec(pq, box, "cat", input=b"not for it").stdout == b""


def test_stdout_and_stderr_keep_their_order_on_one_file(pq: Any, box: str) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do echo out$i; echo err$i >&2; done"
    merged = _exec(pq, box, "sh", "-c", script, stderr=subprocess.STDOUT)
    expected = "".join(f"out{i}\nerr{i}\n" for i in range(1, 9)).encode()
    assert merged.stdout == expected
    apart = _exec(pq, box, "sh", "-c", script)
    assert apart.stdout == b"".join(f"out{i}\n".encode() for i in range(1, 9))
    assert apart.stderr == b"".join(f"err{i}\n".encode() for i in range(1, 9))


def test_reader_going_away_and_unread_stdin_do_not_hang(pq: Any, box: str) -> None:
    proc = subprocess.Popen(
        [PORTIQUE, "exec", box, "yes"],
        env=pq.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    assert proc.stdout.read(4) == b"y\ny\n"
    proc.stdout.close()  # as `| head -2` does
    assert proc.wait(timeout=60) != 0
    with subprocess.Popen(["yes"], stdout=subprocess.PIPE) as yes:
        done = _exec(pq, "-i", box, "true", stdin=yes.stdout)
        yes.kill()
    assert done.returncode == 0


def test_a_background_process_does_not_hold_exec(pq: Any, box: str) -> None:
    out = _exec(pq, box, "sh", "-c", "sleep 123 & echo fg")
    assert out.stdout == b"fg\n"
    # exec returned with the process it left still running (holding its end).
    assert b"sleep 123" in _exec(pq, box, "ps", "-o", "args").stdout
