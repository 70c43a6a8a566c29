"""portique-runtime exec: from args, from --process, detached, with pid file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.rtcli_bundle import RuntimeCLI, one_line_error, unique_id


@pytest.fixture
def running(rt: RuntimeCLI, bundle: Callable[..., Path]) -> str:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle(edit=lambda s: s["process"]["env"].append("BASE=1"))), cid)
    return cid


def test_exec_args_env_cwd_user(rt: RuntimeCLI, running: str) -> None:
    proc = rt(
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "65534:65534",
        running,
        "sh",
        "-c",
        'echo "$FOO $BASE $(pwd) $(id -u):$(id -g)"',
    )
    assert proc.stdout == "bar 1 /tmp 65534:65534\n"


def test_exec_exit_status_and_namespaces(rt: RuntimeCLI, running: str) -> None:
    assert rt("exec", running, "sh", "-c", "exit 5", check=False).returncode == 5
    # Same pid namespace as init: init is PID 1 there.
    assert rt("exec", running, "cat", "/proc/1/cmdline").stdout.split("\0")[:2] == ["sleep", "60"]


def test_exec_process_file(rt: RuntimeCLI, running: str, tmp_path: Path) -> None:
    process = {
        "args": ["sh", "-c", "echo from-file $X; exit 3"],
        "env": ["PATH=/bin", "X=y"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    proc = rt("exec", "--process", str(path), running, check=False)
    assert proc.returncode == 3
    assert proc.stdout == "from-file y\n"


def test_exec_detached_with_pid_file(rt: RuntimeCLI, running: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    proc = rt("exec", "-d", "--pid-file", str(pid_file), running, "sleep", "30")
    assert proc.stdout == ""
    pid = int(pid_file.read_text())
    init = rt.state(running)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"30"]
    assert pid in json.loads(rt("ps", "--format", "json", running).stdout)


def test_exec_errors(rt: RuntimeCLI, running: str, tmp_path: Path) -> None:
    missing = rt("exec", running, "/no/such/binary", check=False)
    assert missing.returncode != 0
    one_line_error(missing.stderr)
    bad = tmp_path / "bad.json"
    bad.write_text('{"args": "not-a-list"}')
    proc = rt("exec", "--process", str(bad), running, check=False)
    assert proc.returncode == 1
    assert "args" in one_line_error(proc.stderr)
    proc = rt("exec", "nonexistent-container", "true", check=False)
    assert proc.returncode == 1
    one_line_error(proc.stderr)
    # The container is unaffected.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and rt.state(running)["status"] != "running":
        time.sleep(0.05)
    assert rt.state(running)["status"] == "running"


def test_foreground_exec_forwards_signals(rt: RuntimeCLI, running: str) -> None:
    script = "trap 'exit 43' TERM; echo ready; while :; do sleep 0.1; done"
    fg = subprocess.Popen(
        rt.argv("exec", running, "sh", "-c", script),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert fg.stdout is not None
        assert fg.stdout.readline() == b"ready\n"
        fg.send_signal(signal.SIGTERM)
        assert fg.wait(timeout=30) == 43
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
        if fg.stdout is not None:
            fg.stdout.close()
    assert rt.state(running)["status"] == "running"


def _cap_mask(status: str, field: str) -> int:
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{field} not in /proc/self/status")


def test_exec_cap_no_new_privs_and_groups(rt: RuntimeCLI, running: str) -> None:
    cap_net_admin = 1 << 12
    plain = rt("exec", running, "cat", "/proc/self/status").stdout
    assert not _cap_mask(plain, "CapEff") & cap_net_admin
    added = rt(
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        "--no-new-privs",
        "-g",
        "10",
        "-g",
        "20",
        running,
        "cat",
        "/proc/self/status",
    ).stdout
    assert _cap_mask(added, "CapEff") & cap_net_admin
    assert _cap_mask(added, "CapBnd") & cap_net_admin
    assert "NoNewPrivs:\t1" in added
    groups = next(line for line in added.splitlines() if line.startswith("Groups:"))
    assert groups.split()[1:] == ["10", "20"]


def test_exec_in_a_paused_container_is_refused(rt: RuntimeCLI, running: str) -> None:
    rt("pause", running)
    try:
        proc = rt("exec", running, "true", check=False)
        assert proc.returncode == 1
        assert "paused" in one_line_error(proc.stderr)
    finally:
        rt("resume", running)
