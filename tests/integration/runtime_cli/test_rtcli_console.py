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
