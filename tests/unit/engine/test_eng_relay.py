"""engine/relay.py: a forked child stands in for the container process."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from portique.engine.relay import Relay


def _fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    return out


def _spawn(relay: Relay, body: Callable[[], None], keep: tuple[int, ...] = ()) -> int:
    """Fork a 'container process' on the relay's stdio holding nothing else
    but `keep`, as the runtime does."""
    stdio = relay.container_stdio()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            tmp = [os.dup(fd) for fd in stdio]
            for target, fd in enumerate(tmp):
                os.dup2(fd, target)
            for fd in _fds() - {0, 1, 2, *keep}:
                with contextlib.suppress(OSError):
                    os.close(fd)
            body()
        except BaseException:
            code = 99
        os._exit(code)
    relay.start(pid)
    return pid


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def ours() -> Iterator[tuple[int, int, int, int, int, int]]:
    """Pipes standing in for our stdin, stdout and stderr: (in_r, in_w, out_r, out_w, err_r, err_w)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fds = (in_r, in_w, out_r, out_w, err_r, err_w)
    yield fds
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def test_stdout_and_stderr_to_one_file_keep_their_order(ours: tuple[int, ...]) -> None:
    in_r, _, out_r, out_w, _, _ = ours

    def body() -> None:
        for i in range(50):
            os.write(1, f"o{i} ".encode())
            os.write(2, f"e{i} ".encode())

    with Relay(stdin=False, ours=(in_r, out_w, out_w)) as relay:
        pid = _spawn(relay, body)
        assert _wait(pid) == 0
    os.close(out_w)
    expected = "".join(f"o{i} e{i} " for i in range(50)).encode()
    assert _read_all(out_r) == expected


def test_separate_streams_and_stdin_eof(ours: tuple[int, ...]) -> None:
    in_r, in_w, out_r, out_w, err_r, err_w = ours

    def body() -> None:
        data = _read_all(0)  # returns only at EOF
        os.write(1, f"{len(data)} {data == b'x' * len(data)}".encode())
        os.write(2, b"done")

    with Relay(stdin=True, ours=(in_r, out_w, err_w)) as relay:
        pid = _spawn(relay, body)
        os.write(in_w, b"x" * 300_000)  # more than a pipe holds
        os.close(in_w)
        assert _wait(pid) == 0
    os.close(out_w)
    os.close(err_w)
    assert _read_all(out_r) == b"300000 True"
    assert _read_all(err_r) == b"done"


def test_a_leftover_loses_our_stdio_once_the_process_ended(ours: tuple[int, ...]) -> None:
    in_r, _, out_r, out_w, _, _ = ours
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()

    def body() -> None:
        if os.fork() == 0:  # the leftover: waits, then tries our stdio
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            os.read(go_r, 1)
            got_in = os.read(0, 100)
            try:
                os.write(1, b"LEAKED")
                wrote = "wrote"
            except OSError as e:
                wrote = errno.errorcode[e.errno or 0]
            os.write(res_w, f"{got_in!r} {wrote}".encode())
            os._exit(0)
        os.write(1, b"main")

    with Relay(stdin=True, ours=(in_r, out_w, out_w)) as relay:
        pid = _spawn(relay, body, keep=(go_r, res_w))
        assert _wait(pid) == 0
    os.write(go_w, b"g")
    os.close(res_w)
    assert _read_all(res_r) == b"b'' EPIPE"
    os.close(out_w)
    assert _read_all(out_r) == b"main"
    for fd in (go_r, go_w, res_r):
        os.close(fd)


def test_our_stdout_gone_gives_the_process_epipe(ours: tuple[int, ...]) -> None:
    in_r, _, out_r, out_w, _, _ = ours
    os.close(out_r)

    def body() -> None:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        try:
            while True:
                os.write(1, b"y" * 4096)
        except BrokenPipeError:
            os._exit(3)

    with Relay(stdin=False, ours=(in_r, out_w, out_w)) as relay:
        pid = _spawn(relay, body)
        assert _wait(pid) == 3


def test_nothing_is_left_open() -> None:
    before = _fds()
    with Relay(stdin=True):
        pass
    assert _fds() == before
    with Relay(stdin=False) as relay:
        pid = _spawn(relay, lambda: None)
        assert _wait(pid) == 0
    assert _fds() == before
