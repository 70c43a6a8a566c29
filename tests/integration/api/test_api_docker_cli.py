"""The docker CLI drives `portique serve`: run, ps, logs, exec, stop, rm,
inspect, cp, stats, -it through a pty, -p, -v, --network."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from support.api_server import DOCKER, Server, start_server
from support.terminal import Terminal

pytestmark = pytest.mark.root


def _wait_for(cond: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        time.sleep(0.02)


def test_version_run_ps_logs_inspect_stop_rm(server: Server) -> None:
    out = server.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
    assert out.stdout.strip() == "1.43 1.24"
    run = server.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (run.stdout, run.stderr) == ("out\n", "err\n")
    code = server.docker("run", "--name", "three", "busybox", "sh", "-c", "exit 3", check=False)
    assert code.returncode == 3
    cid = server.docker(
        "run", "-d", "--name", "web", "busybox", "sh", "-c", "echo ready; sleep 300"
    )
    cid_text = cid.stdout.strip()
    assert len(cid_text) == 64
    ps = server.docker("ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert ps.startswith("web Up")
    assert "three" not in ps
    ps_all = server.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert sorted(ps_all) == ["three", "web"]
    _wait_for(lambda: server.docker("logs", "web").stdout == "ready\n", "logged")
    state = server.docker("inspect", "-f", "{{.State.Status}} {{.Id}}", "web").stdout.split()
    assert state == ["running", cid_text]
    assert server.docker("inspect", "-f", "{{.State.ExitCode}}", "three").stdout.strip() == "3"
    server.docker("stop", "-t", "1", "web")
    assert server.docker("inspect", "-f", "{{.State.Status}}", "web").stdout.strip() == "exited"
    again = server.docker("stop", "web")  # already stopped: 304, still success
    assert again.stdout.strip() == "web"
    server.docker("rm", "web", "three")
    assert server.docker("ps", "-aq").stdout == ""
    missing = server.docker("inspect", "nope", check=False)
    assert missing.returncode == 1
    assert "No such object: nope" in missing.stderr or "No such container: nope" in missing.stderr
    # Running containers survive the server; a new server sees them.
    server.docker("run", "-d", "--name", "keeper", "busybox", "sleep", "300")
    assert server.stop() == 0
    again_srv = start_server(server.pq, server.sock)
    try:
        st = again_srv.docker("inspect", "-f", "{{.State.Status}}", "keeper").stdout.strip()
        assert st == "running"
    finally:
        again_srv.docker("rm", "-f", "keeper")
        assert again_srv.stop() == 0


def test_logs_follow_ends_with_the_container(server: Server) -> None:
    server.docker(
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done",
    )
    out = server.docker("logs", "-f", "-t", "talker", timeout=60).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in out] == ["line1", "line2", "line3"]
    assert all(line[:4].isdigit() and "T" in line.split(" ")[0] for line in out)
    tail = server.docker("logs", "--tail", "1", "talker").stdout
    assert tail == "line3\n"


def test_exec_with_and_without_input(server: Server) -> None:
    server.docker("run", "-d", "--name", "box", "busybox", "sleep", "300")
    r = server.docker("exec", "box", "sh", "-c", "echo o; echo e >&2; exit 4", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (4, "o\n", "e\n")
    assert server.docker("exec", "-i", "box", "cat", input="piped\n").stdout == "piped\n"
    server.docker("exec", "-d", "box", "touch", "/made")
    _wait_for(
        lambda: server.docker("exec", "box", "ls", "/made", check=False).returncode == 0,
        "made by the detached exec",
    )
    bad = server.docker("exec", "box", "/no/such", check=False)
    assert bad.returncode == 127
    stopped = server.docker("run", "-d", "busybox", "true").stdout.strip()
    server.docker("wait", stopped)
    refused = server.docker("exec", stopped, "true", check=False)
    assert refused.returncode != 0
    assert "is not running" in refused.stderr


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_run_it_and_exec_it_through_a_pty(server: Server) -> None:
    term = Terminal(
        [DOCKER, "-H", server.host, "run", "-it", "--name", "tty", "busybox", "sh"], server.env
    )
    try:
        _set_size(term.fd, 33, 101)
        term.expect(b"# ")
        term.send(b"stty size; echo $((6*7))\r")
        term.expect(b"42")
        assert b"33 101" in term.buf
        # exec -it into the same container, resized the same way
        exe = Terminal([DOCKER, "-H", server.host, "exec", "-it", "tty", "sh"], server.env)
        try:
            _set_size(exe.fd, 20, 70)
            exe.expect(b"# ")
            exe.send(b"stty size; tty\r")
            exe.expect(b"/dev/pts/")
            assert b"20 70" in exe.buf
            exe.send(b"exit 5\r")
            assert exe.wait() == 5
        finally:
            exe.close()
        term.send(b"exit 7\r")
        assert term.wait() == 7
    finally:
        term.close()
    assert server.docker("inspect", "-f", "{{.State.ExitCode}}", "tty").stdout.strip() == "7"


def test_cp_both_ways_and_stats(server: Server, tmp_path: Path) -> None:
    server.docker(
        "run",
        "-d",
        "--name",
        "files",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo inside > /data/sub/f && sleep 300",
    )
    _wait_for(
        lambda: (
            server.docker("exec", "files", "cat", "/data/sub/f", check=False).stdout == "inside\n"
        ),
        "written",
    )
    server.docker("cp", "files:/data", str(tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "f").read_text() == "inside\n"
    (tmp_path / "in.txt").write_text("from host\n")
    server.docker("cp", str(tmp_path / "in.txt"), "files:/data/in.txt")
    assert server.docker("exec", "files", "cat", "/data/in.txt").stdout == "from host\n"
    stats = server.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "files")
    assert stats.stdout.split() == ["files", "1"]
    top = server.docker("top", "files").stdout
    assert "sleep 300" in top
    changes = server.docker("diff", "files").stdout.split("\n")
    assert "A /data/in.txt" in changes


def test_publish_volume_and_network(server: Server, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from a bind mount\n")
    server.docker("network", "create", "apinet", check=False)
    nets = server.docker("network", "ls", "--format", "{{.Name}}", check=False).stdout.split()
    network = "apinet" if "apinet" in nets else "bridge"
    server.docker(
        "run",
        "-d",
        "--name",
        "httpd",
        "--network",
        network,
        "-p",
        f"127.0.0.1:{port}:80",
        "-v",
        f"{tmp_path / 'www'}:/www:ro",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )

    def fetched() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
                return bool(r.read() == b"hello from a bind mount\n")
        except OSError:
            return False

    _wait_for(fetched, "served through the published port")
    port_out = server.docker("port", "httpd").stdout
    assert f"127.0.0.1:{port}" in port_out
    info = json.loads(server.docker("inspect", "httpd").stdout)[0]
    assert info["HostConfig"]["Binds"] == [f"{tmp_path / 'www'}:/www:ro"]
    assert network in info["NetworkSettings"]["Networks"]
    server.docker("rm", "-f", "httpd")
    if network == "apinet":
        server.docker("network", "rm", "apinet", check=False)


def test_a_client_that_disconnects_leaves_no_worker(server: Server) -> None:
    server.docker(
        "run",
        "-d",
        "--name",
        "loud",
        "busybox",
        "sh",
        "-c",
        "while true; do echo x; sleep 0.1; done",
    )
    import subprocess

    follower = subprocess.Popen(
        [DOCKER, "-H", server.host, "logs", "-f", "loud"], stdout=subprocess.PIPE, env=server.env
    )
    attacher = subprocess.Popen(
        [DOCKER, "-H", server.host, "attach", "--no-stdin", "loud"],
        stdout=subprocess.PIPE,
        env=server.env,
    )
    assert follower.stdout is not None
    assert attacher.stdout is not None
    follower.stdout.readline()
    attacher.stdout.readline()
    _wait_for(lambda: len(server.workers()) >= 2, "two workers serving")
    follower.kill()
    attacher.kill()
    follower.wait()
    attacher.wait()
    _wait_for(lambda: server.workers() == [], "every worker gone")
    assert server.docker("inspect", "-f", "{{.State.Status}}", "loud").stdout.strip() == "running"
    os.kill(server.proc.pid, 0)
