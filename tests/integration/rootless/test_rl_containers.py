"""A rootless engine's everyday verbs: detached runs, exec, logs, stop, a named
volume kept across containers, and `-it` at a terminal."""

from __future__ import annotations

import os

from support.rootless_cli import TEST_USER, UserPortique, subuid_start, wait_for
from support.terminal import Terminal


def test_detached_exec_logs_stop(upq: UserPortique) -> None:
    cid = upq.ok(
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done",
    ).strip()
    try:
        assert wait_for(lambda: "started" in upq.ok("logs", cid))
        assert (
            upq.ok("exec", cid, "sh", "-c", "id -u; echo $$ > /tmp/x; cat /tmp/x").split()[0] == "0"
        )
        assert upq.ok("exec", "-u", "65534", cid, "id", "-u").strip() == "65534"
        upq.ok("stop", "-t", "10", cid)
        assert upq.ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "0"
        assert upq.ok("logs", cid) == "started\nbye\n"
    finally:
        upq.ok("rm", "-f", cid)


def test_named_volume_keeps_data_with_shifted_owners(upq: UserPortique) -> None:
    upq.ok("volume", "create", "rlvol")
    try:
        upq.ok(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "rlvol:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f && chown 1000:1000 /data/f",
        )
        out = upq.ok(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "rlvol:/data",
            "busybox",
            "stat",
            "-c",
            "%u %n",
            "/data/f",
        )
        assert out.strip() == "1000 /data/f"
        host = upq.root / "volumes" / "rlvol" / "_data" / "f"
        assert os.stat(host).st_uid == subuid_start(TEST_USER) + 999
    finally:
        upq.ok("volume", "rm", "rlvol")


def test_interactive_terminal(upq: UserPortique) -> None:
    term = Terminal(upq.argv("run", "--rm", "-it", "--network", "none", "busybox", "sh"), upq.env)
    try:
        term.send(b"tty; id -u; exit 7\r")
        term.expect(b"/dev/pts/0")
        assert term.wait() == 7
    finally:
        term.close()
