"""Pure helpers of portique-runtime's verbs: signals, durations, tables, exec process."""

from __future__ import annotations

import argparse
import os
import signal

import pytest

from portique.cli.runc.commands.events import event_line, parse_duration
from portique.cli.runc.commands.exec_ import build_process, parse_user
from portique.cli.runc.commands.list_ import format_table
from portique.cli.runc.commands.ps import filter_ps
from portique.cli.runc.signals import parse_signal
from portique.errors import InvalidArgument
from portique.oci.runtime import parse_process


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("KILL", signal.SIGKILL),
        ("SIGKILL", signal.SIGKILL),
        ("sigterm", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("9", 9),
        ("15", 15),
        ("HUP", signal.SIGHUP),
        ("SIGUSR1", signal.SIGUSR1),
        ("RTMIN+1", signal.SIGRTMIN + 1),
        ("SIGRTMAX-2", signal.SIGRTMAX - 2),
    ],
)
def test_parse_signal(text: str, want: int) -> None:
    assert parse_signal(text) == want


@pytest.mark.parametrize("text", ["", "0", "65", "NOPE", "SIG", "-9", "RTMIN+99", "9x"])
def test_parse_signal_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown signal"):
        parse_signal(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("250us", 2.5e-4),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "-1s", "1s ", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(text)


def test_event_line_shape() -> None:
    assert event_line("c1", None, "oom") == '{"type":"oom","id":"c1"}\n'
    line = event_line("c1", {"pids": {"current": 1}})
    assert line == '{"type":"stats","id":"c1","data":{"pids":{"current":1}}}\n'


def test_format_table_matches_go_tabwriter() -> None:
    rows = [
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        ["x1", "9000", "created", "/tmp/rtref/b", "2026-11-28T13:43:30.400818782Z", "root"],
    ]
    # What runc 1.1 prints for the same container.
    assert format_table(rows) == (
        "ID          PID         STATUS      BUNDLE         CREATED                          OWNER\n"
        "x1          9000        created     /tmp/rtref/b   2026-11-28T13:43:30.400818782Z   root\n"
    )
    assert format_table([]) == ""


def test_filter_ps_keeps_header_and_container_pids() -> None:
    out = (
        "UID          PID    PPID  C STIME TTY          TIME CMD\n"
        "root           1       0  0 13:00 ?        00:00:01 /sbin/init\n"
        "root         900       1  0 13:01 ?        00:00:00 sleep 100\n"
        "root        9001     900  0 13:01 ?        00:00:00 sh -c 900\n"
    )
    assert filter_ps(out, [900]) == (
        "UID          PID    PPID  C STIME TTY          TIME CMD\n"
        "root         900       1  0 13:01 ?        00:00:00 sleep 100\n"
    )
    with pytest.raises(InvalidArgument, match="PID column"):
        filter_ps("USER CMD\nroot x\n", [1])


def _exec_args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "command": ["echo", "hi"],
        "cwd": "",
        "env": [],
        "tty": None,
        "no_new_privs": None,
        "user": "",
        "additional_gids": [],
        "cap": [],
    }
    base.update(kw)
    return argparse.Namespace(**base)


BASE_PROCESS = {
    "terminal": True,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
        "bounding": ["CAP_KILL"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"],
    },
    "noNewPrivileges": False,
}


def test_build_process_overrides_like_runc() -> None:
    proc = build_process(
        _exec_args(
            env=["A=1"],
            cwd="/tmp",
            user="1000:2000",
            cap=["CAP_NET_ADMIN", "CAP_KILL"],
            no_new_privs=True,
            additional_gids=[10],
        ),
        BASE_PROCESS,
    )
    assert proc["args"] == ["echo", "hi"]
    assert proc["env"] == ["PATH=/bin", "TERM=xterm", "A=1"]
    assert proc["cwd"] == "/tmp"
    assert proc["user"] == {"uid": 1000, "gid": 2000, "additionalGids": [10]}
    assert proc["terminal"] is False  # runc: no tty unless -t
    assert proc["noNewPrivileges"] is True
    assert proc["capabilities"]["bounding"] == ["CAP_KILL", "CAP_NET_ADMIN"]
    assert "ambient" not in proc["capabilities"]
    # The base is untouched, and the result is a valid OCI process.
    assert BASE_PROCESS["args"] == ["sh"]
    parsed = parse_process(proc)
    assert parsed.args == ("echo", "hi")
    assert parsed.user.uid == 1000
    assert parsed.user.gid == 2000


def test_build_process_tty_and_uid_only() -> None:
    proc = build_process(_exec_args(tty=True, user="5"), BASE_PROCESS)
    assert proc["terminal"] is True
    assert proc["user"] == {"uid": 5, "gid": 0}


def test_build_process_needs_a_command() -> None:
    with pytest.raises(InvalidArgument, match="needs a command"):
        build_process(_exec_args(command=[]), BASE_PROCESS)


@pytest.mark.parametrize("text", ["root", "1:x", "-1", "1:-2", ""])
def test_parse_user_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_user(text)


def test_forward_signals_delivers_and_restores() -> None:
    from portique.cli.runc.forward import forward_signals

    got: list[int] = []
    before = signal.getsignal(signal.SIGUSR1)
    with forward_signals(got.append):
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGUSR1, signal.SIGTERM]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_forward_signals_survives_a_failing_send() -> None:
    from portique.cli.runc.forward import forward_signals

    tried: list[int] = []

    def send(sig: int) -> None:
        tried.append(sig)
        raise InvalidArgument("container gone")

    with forward_signals(send):
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt, no error
    # Tried at once (and maybe retried from the timer meanwhile).
    assert tried
    assert set(tried) == {signal.SIGINT}


def test_forward_signals_retries_until_the_target_exists() -> None:
    import time

    from portique.cli.runc.forward import forward_signals

    attempts: list[int] = []
    delivered: list[int] = []

    def send(sig: int) -> None:
        attempts.append(sig)
        if len(attempts) < 4:
            raise InvalidArgument("not created yet")
        delivered.append(sig)

    with forward_signals(send):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not delivered and time.monotonic() < deadline:
            time.sleep(0.01)
    assert delivered == [signal.SIGTERM]
    assert len(attempts) == 4
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
