"""The fork-server's mechanics with a toy handler (tests/support/warm_toy.py), as the
user running the tests: exit codes, SystemExit and uncaught exceptions as a
Python process has them, stdin/stdout/stderr, cwd, umask, environment and argv
taken from the client, signals relayed, crashes that leave the server
serving, and no server fd in a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]
SERVE = (
    "import sys\nfrom pathlib import Path\nfrom portique.warm import server\n"
    "from support.warm_toy import handler\n"
    "server.serve(Path(sys.argv[1]), handler, ['support.warm_toy'])\n"
)
CLIENT = (
    "import sys\nfrom portique.warm import client\n"
    "code = client.run(sys.argv[1:], sys.argv[1])\n"
    "sys.exit(99 if code is None else code)\n"
)


@pytest.fixture(scope="module")
def runroot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("warm-run")
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(root)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (root / "warm.pid").exists():
            assert proc.poll() is None, "the toy server died"
            assert time.monotonic() < deadline, "the toy server never listened"
            time.sleep(0.01)  # poll interval
        yield root
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    assert not (root / "warm.sock").exists()


def toy(
    runroot: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    umask: int = -1,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The toy command `args` through the server (the client's argv[1], the run
    root, is the argv[0] the handler does not see)."""
    return subprocess.run(
        [sys.executable, "-c", CLIENT, str(runroot), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        umask=umask,
        input=input,
    )


def test_output_and_exit_codes(runroot: Path) -> None:
    out = toy(runroot, "echo", "hello", "world")
    assert (out.returncode, out.stdout, out.stderr) == (0, "hello world\n", "")
    assert toy(runroot, "exit", "42").returncode == 42
    assert toy(runroot, "sysexit").returncode == 0
    msg = toy(runroot, "sysexit", "a message")
    assert (msg.returncode, msg.stderr) == (1, "a message\n")
    boom = toy(runroot, "raise")
    assert boom.returncode == 1
    assert boom.stderr.startswith("Traceback")
    assert "RuntimeError: boom" in boom.stderr
    assert toy(runroot, "cat", input="some input").stdout == "some input"


def test_the_worker_takes_the_clients_place(runroot: Path, tmp_path: Path) -> None:
    out = toy(runroot, "state", "x", env=dict(os.environ, TOY="yes"), cwd=tmp_path, umask=0o027)
    assert out.stdout == f"{tmp_path} 0o27 yes ['state', 'x']\n"


def test_no_server_fd_reaches_a_worker(runroot: Path) -> None:
    # The client's stdin, stdout, stderr, and two close-on-exec fds: the
    # connection to the client (for the exit code) and the worker's channel
    # to the server (monitors are forked by the server's zygote).
    fds = toy(runroot, "fds").stdout.split()
    assert fds[:3] == ["0", "1", "2"]
    assert len(fds) == 5, fds
    assert all(fd.endswith("e") for fd in fds[3:]), fds


def test_crashes_leave_the_server_serving(runroot: Path) -> None:
    assert toy(runroot, "abort").returncode == -signal.SIGABRT
    assert toy(runroot, "echo", "still").stdout == "still\n"


def test_signals_are_relayed(runroot: Path) -> None:
    for sig, cmd, want in (
        (signal.SIGUSR1, "wait-signal", 9),
        (signal.SIGINT, "interrupt", -signal.SIGINT),
    ):
        proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(runroot), cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            proc.send_signal(sig)
            out, _err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == want, cmd
        if cmd == "wait-signal":
            assert out == f"got {int(sig)}\n".encode()
