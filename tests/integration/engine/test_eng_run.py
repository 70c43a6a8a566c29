"""`portique run` end to end against the real kernel: exit codes, logs, limits, security."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.engine_cli import Portique


@pytest.mark.vm
def test_run_foreground_output_and_exit_code(pq: Portique) -> None:
    # --network none: these tests also run in the cgroup v2 VM, which has no nftables.
    p = pq(
        "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert p.returncode == 3
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"


def test_run_rm_leaves_nothing(pq: Portique) -> None:
    pq.ok("run", "--rm", "--name", "gone", "busybox", "true")
    assert pq("inspect", "gone").returncode != 0


def test_exit_codes_125_126_127(pq: Portique) -> None:
    before = pq.ok("ps", "-aq")
    p = pq("run", "--rm", "--pull", "never", "no-such-image:latest", "true")
    assert p.returncode == 125
    assert len(p.stderr.strip().splitlines()) == 1
    assert "no such image" in p.stderr.lower() or "not found" in p.stderr.lower()
    p = pq("run", "--rm", "busybox", "/no/such/command")
    assert p.returncode == 127, p.stderr
    p = pq("run", "--rm", "busybox", "/etc/passwd")
    assert p.returncode == 126, p.stderr
    for bad in (
        ["--memory", "12q"],
        ["--cpus", "x"],
        ["-v", "rel/dir:/x"],
        ["--restart", "often"],
        ["--ulimit", "nofile"],
    ):
        p = pq("run", "--rm", *bad, "busybox", "true")
        assert p.returncode == 125, bad
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "Traceback" not in p.stderr
    p = pq("run", "--memory", "12q", "busybox", "true")
    assert (
        p.stderr.strip()
        == 'portique: invalid argument "12q" for "-m, --memory" flag: invalid size: \'12q\''
    )
    assert pq.ok("ps", "-aq") == before


def test_name_in_use_is_one_line(pq: Portique) -> None:
    pq.ok("create", "--name", "dup", "busybox", "true")
    p = pq("create", "--name", "dup", "busybox", "true")
    assert p.returncode == 125
    assert 'name "/dup" is already in use' in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    pq.ok("rm", "dup")


def test_image_defaults_env_user_workdir_hostname(pq: Portique, tmp_path: Path) -> None:
    envfile = tmp_path / "env"
    envfile.write_text("FROMFILE=yes\n# c\n")
    out = pq.ok(
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        str(envfile),
        "-u",
        "nobody",
        "-w",
        "/tmp/work",
        "-h",
        "myhost",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROMFILE $HOSTNAME $HOME; id -u; pwd; hostname; cat /etc/hostname",
    )
    assert out.split("\n")[:5] == [
        "1 yes myhost /nonexistent",
        "65534",
        "/tmp/work",
        "myhost",
        "myhost",
    ]
    out = pq.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert out == "via entrypoint\n"
    out = pq.ok("run", "--rm", "busybox", "cat", "/etc/hosts", "/etc/resolv.conf")
    assert "localhost" in out
    assert "nameserver" in out


def test_unknown_user_fails_cleanly(pq: Portique) -> None:
    p = pq("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert p.returncode == 125
    assert "unable to find user nosuchuser" in p.stderr


def test_detached_logs_survive(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "busybox", "sh", "-c", "echo one; echo two >&2; echo three").strip()
    assert len(cid) == 64
    assert pq.ok("wait", cid).strip() == "0"
    logs = pq(("logs"), cid)
    assert logs.stdout == "one\nthree\n"
    assert logs.stderr == "two\n"
    last = pq("logs", "--tail", "1", cid)
    assert len((last.stdout + last.stderr).splitlines()) == 1
    stamped = pq.ok("logs", "-t", cid).splitlines()[0]
    assert stamped.endswith(" one")
    assert stamped[4] == "-"
    assert stamped[10] == "T"
    # Nothing of the run is still alive, and the log is still there.
    assert pq.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert pq.ok("logs", cid[:12]) == "one\nthree\n"
    pq.ok("rm", cid)


def test_logs_follow(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"
    ).strip()
    assert pq.ok("logs", "-f", cid, timeout=30) == "1\n2\n3\n"
    pq.ok("rm", cid)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_oom_kill_137(pq: Portique) -> None:
    p = pq(
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "tail /dev/zero",
    )
    assert p.returncode == 137
    assert pq.inspect("oom", "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137"
    pq.ok("rm", "oom")


@pytest.mark.vm
def test_pids_limit_bounds_fork_bomb(pq: Portique) -> None:
    # 41 processes at once: the children outlive the loop (the init's exit
    # ends them: a pid namespace).
    bomb = "for i in $(seq 40); do sleep 300 & done; echo forked"
    p = pq(
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        bomb,
        timeout=60,
    )
    assert p.returncode != 0
    assert "can't fork" in p.stderr
    assert p.stdout == ""
    ok = pq(
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "100",
        "busybox",
        "sh",
        "-c",
        bomb,
        timeout=60,
    )
    assert ok.returncode == 0
    assert ok.stdout == "forked\n"


def test_read_only_rootfs(pq: Portique) -> None:
    p = pq("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert p.returncode != 0
    assert "Read-only file system" in p.stderr
    out = pq.ok(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "touch /scratch/x && echo ok",
    )
    assert out == "ok\n"


def _capeff(pq: Portique, *flags: str) -> int:
    out = pq.ok("run", "--rm", *flags, "busybox", "grep", "CapEff", "/proc/self/status")
    return int(out.split()[1], 16)


def test_capabilities(pq: Portique) -> None:
    assert _capeff(pq, "--cap-drop", "ALL") == 0
    default = _capeff(pq)
    assert default == 0xA80425FB  # Docker's default set
    assert _capeff(pq, "--cap-drop", "CHOWN") == default & ~1
    assert _capeff(pq, "--cap-add", "NET_ADMIN") == default | (1 << 12)


def test_default_seccomp_blocks_unshare_and_mount(pq: Portique) -> None:
    p = pq("run", "--rm", "busybox", "unshare", "-U", "true")
    assert p.returncode != 0
    assert (
        pq(
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "busybox",
            "unshare",
            "-U",
            "true",
        ).returncode
        == 0
    )
    p = pq("run", "--rm", "busybox", "sh", "-c", "mkdir -p /m && mount -t tmpfs none /m")
    assert p.returncode != 0
    status = pq.ok("run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert status.split()[1] == "2"  # a seccomp filter is installed
    status = pq.ok(
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    )
    assert status.split()[1] == "0"


def test_masked_and_readonly_proc(pq: Portique) -> None:
    out = pq.ok(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/domainname 2>&1 || echo ro",
    )
    assert out.split() == ["0", "ro"]


def test_network_none_and_host(pq: Portique) -> None:
    out = pq.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]
    assert "UP" in out or "LOOPBACK,UP" in out
    pq.ok("run", "--rm", "--network", "none", "busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1")
    host = pq.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert len(host.splitlines()) > 1


def test_init_reaper(pq: Portique) -> None:
    out = pq.ok(
        "run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"
    )
    assert out.startswith("/sbin/docker-init -- sh")


def test_ulimit(pq: Portique) -> None:
    out = pq.ok(
        "run", "--rm", "--ulimit", "nproc=100:200", "busybox", "sh", "-c", "ulimit -u; ulimit -Hu"
    )
    assert out.split() == ["100", "200"]


def test_exec_sees_pid_namespace(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "busybox", "sleep", "300").strip()
    out = pq.ok("exec", cid, "ps", "-o", "pid,args")
    lines = [line.split(None, 1) for line in out.splitlines()[1:]]
    assert ["1", "sleep 300"] in lines
    assert (
        pq.ok(
            "exec",
            "-e",
            "X=y",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            cid,
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)",
        )
        == "y /tmp 65534\n"
    )
    assert pq("exec", cid, "sh", "-c", "exit 5").returncode == 5
    assert pq("exec", cid, "nosuch").returncode == 127
    p = pq("exec", "-i", cid, "cat", input="piped\n")
    assert p.stdout == "piped\n"
    pq.ok("rm", "-f", cid)


def _wait_for_log(pq: Portique, cid: str, text: str) -> None:
    deadline = time.monotonic() + 60
    while pq.ok("logs", cid) != text:
        assert time.monotonic() < deadline, f"{cid} never logged {text!r}"
        time.sleep(0.05)


def test_stop_sends_signal_then_kill(pq: Portique) -> None:
    # The shell says when its trap is set, and says again when it has lived on
    # past the stop signal: stop waited for it (-t) before killing it.
    cid = pq.ok(
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; t=1' TERM; echo ready;"
        ' while true; do [ -n "$t" ] && echo lived on && t=; sleep 0.1; done',
    ).strip()
    _wait_for_log(pq, cid, "ready\n")
    pq.ok("stop", "-t", "2", cid)
    assert pq.inspect(cid, "{{.State.ExitCode}}") == "137"
    assert pq.ok("logs", cid) == "ready\ngot TERM\nlived on\n"
    # A process that exits on the stop signal stops at once.
    cid2 = pq.ok(
        "run",
        "-d",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' USR1; echo ready; while true; do sleep 0.1; done",
    ).strip()
    _wait_for_log(pq, cid2, "ready\n")
    pq.ok("stop", cid2)
    assert pq.inspect(cid2, "{{.State.ExitCode}}") == "9"
    pq.ok("rm", cid, cid2)


def test_run_i_streams_megabytes_both_ways(pq: Portique) -> None:
    import hashlib
    import os
    import subprocess

    data = os.urandom(5 << 20)
    proc = subprocess.run(
        [*pq.argv, "run", "-i", "--rm", "busybox", "cat"],
        env=pq.env,
        input=data,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_run_attach_selected_streams(pq: Portique) -> None:
    p = pq("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "err\n")
