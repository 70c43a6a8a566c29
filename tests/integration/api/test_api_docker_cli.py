"""The docker CLI drives `portique serve`: run, ps, logs, exec, stop, rm,
inspect, cp, stats, -it through a pty, -p, -v, --network."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from support.api_server import DOCKER, Server, start_server
from support.engine_cli import Portique
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
    run = server.docker(
        "run", "--network", "none", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"
    )
    assert (run.stdout, run.stderr) == ("out\n", "err\n")
    code = server.docker(
        "run", "--network", "none", "--name", "three", "busybox", "sh", "-c", "exit 3", check=False
    )
    assert code.returncode == 3
    cid = server.docker(
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo ready; sleep 300",
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
    server.docker("run", "--network", "none", "-d", "--name", "keeper", "busybox", "sleep", "300")
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
        "--network",
        "none",
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
    server.docker("run", "--network", "none", "-d", "--name", "box", "busybox", "sleep", "300")
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
    stopped = server.docker("run", "--network", "none", "-d", "busybox", "true").stdout.strip()
    server.docker("wait", stopped)
    refused = server.docker("exec", stopped, "true", check=False)
    assert refused.returncode != 0
    assert "is not running" in refused.stderr


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_run_it_and_exec_it_through_a_pty(server: Server) -> None:
    term = Terminal(
        [
            DOCKER,
            "-H",
            server.host,
            "run",
            "--network",
            "none",
            "-it",
            "--name",
            "tty",
            "busybox",
            "sh",
        ],
        server.env,
    )
    try:
        _set_size(term.fd, 33, 101)
        term.expect(b"# ")
        term.send(b"stty size; echo $((6*7))\r")
        term.expect(b"42")
        assert b"33 101" in term.buf
        # A resize during the session: the pty is not the CLI's controlling
        # terminal (support/terminal.py), so its SIGWINCH is sent by hand.
        _set_size(term.fd, 41, 120)
        term.proc.send_signal(signal.SIGWINCH)
        for n in range(300):  # until the container's terminal has the new size
            term.proc.send_signal(signal.SIGWINCH)
            term.send(f"stty size; echo R$(({n}+1000))\r".encode())
            term.expect(f"R{n + 1000}".encode())
            if b"41 120" in term.buf:
                break
            time.sleep(0.1)
        assert b"41 120" in term.buf
        # exec -it into the same container, resized the same way
        exe = Terminal([DOCKER, "-H", server.host, "exec", "-it", "tty", "sh"], server.env)
        try:
            _set_size(exe.fd, 20, 70)
            exe.expect(b"# ")
            exe.send(b"stty size; tty\r")
            exe.expect(b"/dev/pts/")
            assert b"20 70" in exe.buf
            _set_size(exe.fd, 25, 90)  # through POST /exec/{id}/resize
            exe.proc.send_signal(signal.SIGWINCH)
            for n in range(300):  # SIGWINCH again each time: one may come too early
                exe.proc.send_signal(signal.SIGWINCH)
                exe.send(f"stty size; echo E$(({n}+1000))\r".encode())
                exe.expect(f"E{n + 1000}".encode())
                if b"25 90" in exe.buf:
                    break
                time.sleep(0.1)
            assert b"25 90" in exe.buf
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
        "--network",
        "none",
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
        "--network",
        "none",
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
    follower.stdout.close()
    attacher.stdout.close()
    try:
        _wait_for(lambda: server.workers() == [], "every worker gone")
    except AssertionError:
        for pid in server.workers():  # their stacks, in the server's log
            os.kill(pid, signal.SIGUSR1)
        time.sleep(1)
        raise AssertionError(server.log.read_text()) from None
    assert server.docker("inspect", "-f", "{{.State.Status}}", "loud").stdout.strip() == "running"
    os.kill(server.proc.pid, 0)


def test_lifecycle_verbs(server: Server, tmp_path: Path) -> None:
    server.docker("run", "-d", "--network", "none", "--name", "life", "busybox", "sleep", "300")
    server.docker("pause", "life")
    assert server.docker("inspect", "-f", "{{.State.Status}}", "life").stdout.strip() == "paused"
    server.docker("unpause", "life")
    server.docker("rename", "life", "life2")
    server.docker("update", "--memory", "64m", "life2")
    mem = server.docker("inspect", "-f", "{{.HostConfig.Memory}}", "life2").stdout.strip()
    assert mem == str(64 << 20)
    started = server.docker("inspect", "-f", "{{.State.StartedAt}}", "life2").stdout
    server.docker("restart", "-t", "1", "life2")
    assert server.docker("inspect", "-f", "{{.State.StartedAt}}", "life2").stdout != started
    server.docker("kill", "-s", "KILL", "life2")
    assert server.docker("wait", "life2").stdout.strip() == "137"
    server.docker("export", "-o", str(tmp_path / "fs.tar"), "life2")
    import tarfile

    with tarfile.open(tmp_path / "fs.tar") as tar:
        assert "bin/busybox" in tar.getnames()
    pruned = server.docker("container", "prune", "-f").stdout
    assert "Total reclaimed space" in pruned
    assert server.docker("ps", "-aq").stdout == ""
    refused = server.docker("kill", "nothere", check=False)
    assert refused.returncode == 1
    assert "No such container: nothere" in refused.stderr


def test_tcp_on_loopback(engine_root: Portique, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = start_server(engine_root, tmp_path / "t.sock", "-H", f"tcp://127.0.0.1:{port}")
    try:
        out = subprocess.run(
            [DOCKER, "-H", f"tcp://127.0.0.1:{port}", "run", "--rm", "--network", "none",
             "busybox", "echo", "over tcp"],
            capture_output=True, text=True, timeout=120, env=srv.env, check=False,
        )  # fmt: skip
        assert (out.returncode, out.stdout) == (0, "over tcp\n"), out.stderr
    finally:
        srv.proc.send_signal(signal.SIGINT)  # SIGINT stops it as cleanly as SIGTERM
        assert srv.proc.wait(60) == 0
    assert not srv.sock.exists()


def test_detach_keys_leave_the_container_running(server: Server) -> None:
    term = Terminal(
        [DOCKER, "-H", server.host, "run", "-it", "--network", "none", "--name", "det", "busybox"],
        server.env,
    )
    try:
        term.expect(b"# ")
        term.send(b"\x10\x11")  # ctrl-p ctrl-q
        assert term.wait() == 0
    finally:
        term.close()
    assert server.docker("inspect", "-f", "{{.State.Status}}", "det").stdout.strip() == "running"
    # and attach again
    again = Terminal([DOCKER, "-H", server.host, "attach", "det"], server.env)
    try:
        again.send(b"echo back $((40+2))\r")
        again.expect(b"back 42")
        again.send(b"exit 0\r")
        assert again.wait() == 0
    finally:
        again.close()


def test_monitors_are_forked_from_the_servers_zygote(server: Server) -> None:
    """Issue 14 item 1: `portique serve` starts monitors as forks of its
    monitors' zygote (warm/zygote.py), not by re-executing an interpreter;
    they share the server's interpreter and outlive the server."""
    from portique.warm.zygote import COMM

    def comm(pid: int) -> str:
        return Path(f"/proc/{pid}/comm").read_text().strip()

    def stat_field(pid: int, index: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[index])

    cid = server.docker("run", "-d", "--network", "none", "busybox", "sleep", "300").stdout.strip()
    init = int(server.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout)
    monitor = stat_field(init, 1)  # the init's parent
    assert comm(monitor) == f"pqm-{cid[:11]}"
    zygote = stat_field(monitor, 1)
    assert comm(zygote) == COMM
    assert stat_field(zygote, 1) == server.proc.pid  # the server's own child
    assert os.readlink(f"/proc/{monitor}/exe") == os.readlink(f"/proc/{server.proc.pid}/exe")
    assert server.docker("exec", cid, "echo", "hi").stdout == "hi\n"
    assert server.stop() == 0
    _wait_for(lambda: not Path(f"/proc/{zygote}").exists() or comm(zygote) != COMM, "zygote gone")
    assert comm(monitor) == f"pqm-{cid[:11]}"  # the container and its monitor stay
    assert Path(f"/proc/{init}").exists()
    server.pq.ok("rm", "-f", cid)


def test_containers_start_when_the_zygote_is_gone(server: Server) -> None:
    """A server whose zygote died starts monitors as the CLI does."""
    from portique.warm.zygote import COMM

    def zygotes() -> list[int]:
        task = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        found = []
        for pid in task.read_text().split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == COMM:
                    found.append(int(pid))
            except OSError:
                continue
        return found

    _wait_for(lambda: len(zygotes()) == 1, "the zygote named")  # it names itself once forked
    zygote = zygotes()[0]
    os.kill(zygote, signal.SIGKILL)  # the server reaps it
    _wait_for(lambda: not Path(f"/proc/{zygote}").exists(), "zygote reaped")
    run = server.docker("run", "--rm", "--network", "none", "busybox", "echo", "still")
    assert run.stdout == "still\n"
    cid = server.docker("run", "-d", "--network", "none", "busybox", "sleep", "300").stdout.strip()
    init = int(server.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout)
    monitor = int(Path(f"/proc/{init}/stat").read_text().rpartition(")")[2].split()[1])
    assert Path(f"/proc/{monitor}/comm").read_text().strip() != f"pqm-{cid[:11]}"
    assert server.docker("exec", cid, "echo", "hi").stdout == "hi\n"
    server.docker("rm", "-f", cid)
