"""Terminals: the pty master handed over --console-socket, and a foreground
run that relays its own pty."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from support.rtcli_bundle import RuntimeCLI, unique_id


def read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the slave side closed
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_console_socket_receives_pty_master(
    rt: RuntimeCLI, bundle: Callable[..., Path], tmp_path: Path
) -> None:
    sock_path = tmp_path / "console.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    listener.settimeout(30)
    b = bundle("sh", "-c", "tty; read line; echo got:$line", terminal=True)
    cid = unique_id()
    with listener:
        rt("create", "-b", str(b), "--console-socket", str(sock_path), cid)
        conn, _ = listener.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    master = fds[0]
    try:
        assert os.isatty(master)
        rt("start", cid)
        assert b"/dev/pts/0" in read_until(master, b"/dev/pts/0")
        os.write(master, b"hello\n")
        assert b"got:hello" in read_until(master, b"got:hello")
    finally:
        os.close(master)
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    rt("delete", cid)


def test_create_with_terminal_needs_console_socket(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    cid = unique_id()
    proc = rt("create", "-b", str(bundle(terminal=True)), cid, check=False)
    assert proc.returncode == 1
    assert "console" in proc.stderr
    assert rt("list", "-q").stdout == ""


def test_foreground_run_relays_its_own_pty(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    b = bundle("sh", "-c", "tty; test -t 0 && echo stdin-is-tty; exit 4", terminal=True)
    proc = subprocess.run(
        rt.argv("run", "-b", str(b), unique_id()),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr
    out = proc.stdout.replace(b"\r\n", b"\n")
    assert b"/dev/pts/0\n" in out
    assert b"stdin-is-tty\n" in out


def test_foreground_exec_tty_relays(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    proc = subprocess.run(
        rt.argv("exec", "-t", cid, "sh", "-c", "test -t 1 && echo out-is-tty"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"out-is-tty" in proc.stdout


def test_exec_detached_with_console_socket(
    rt: RuntimeCLI, bundle: Callable[..., Path], tmp_path: Path
) -> None:
    """What containerd's shim does for `ctr task exec -t`: --process, --detach,
    --pid-file and --console-socket together."""
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    process = tmp_path / "p.json"
    process.write_text(
        '{"terminal": true, "args": ["sh", "-c", "tty; read x; echo bye:$x"], "cwd": "/",'
        ' "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}'
    )
    sock_path = tmp_path / "exec-console.sock"
    pid_file = tmp_path / "exec.pid"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    listener.settimeout(30)
    with listener:
        rt(
            "exec",
            "--process",
            str(process),
            "--detach",
            "--pid-file",
            str(pid_file),
            "--console-socket",
            str(sock_path),
            cid,
        )
        conn, _ = listener.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
    master = fds[0]
    try:
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}").exists()
        assert b"/dev/pts/" in read_until(master, b"/dev/pts/")
        os.write(master, b"now\n")
        assert b"bye:now" in read_until(master, b"bye:now")
    finally:
        os.close(master)


def test_interactive_run_in_a_real_terminal(
    rt: RuntimeCLI, bundle: Callable[..., Path], tmp_path: Path
) -> None:
    """A person at a terminal (tmux gives us one): keys reach the shell, its
    output and the window size come back, and the exit status is the shell's."""
    b = bundle("sh", terminal=True)
    server = f"rtcli-{os.getpid()}"
    status_file = tmp_path / "status"
    command = " ".join(rt.argv("run", "-b", str(b), unique_id()))
    tmux = ["tmux", "-L", server]
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "40",
            f"{command}; echo $? > {status_file}",
        ],
        check=True,
        timeout=30,
    )

    def screen_has(text: str) -> bool:
        deadline = time.monotonic() + 20
        pane = ""
        while time.monotonic() < deadline:
            pane = subprocess.run(
                [*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=False
            ).stdout
            if text in pane:
                return True
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on the screen: {pane!r}")

    try:
        assert screen_has("/ #")  # capture-pane trims the trailing space
        subprocess.run([*tmux, "send-keys", "echo hi-$((40+2)); stty size", "Enter"], check=True)
        assert screen_has("hi-42")
        assert screen_has("40 100")
        subprocess.run([*tmux, "send-keys", "exit 5", "Enter"], check=True)
        deadline = time.monotonic() + 20
        while not status_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_file.read_text().strip() == "5"
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
    assert rt("list", "-q").stdout == ""
