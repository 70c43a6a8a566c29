"""What a rootless container's root can do on the host: no more than the user.

Its escape lands as the user: a "root" process inside cannot write a file the
host's root owns through any bind mount (not with --privileged either, not
after remounting it read-write), cannot read /etc/shadow, cannot make device
nodes or change the host's network; what it creates in a directory of the
user's belongs to the user (or a subordinate id) on the host. Limits it
cannot have here (no delegated cgroup on this cgroup v1 host) are refused."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from support.rootless_cli import TEST_USER, UserPortique, subuid_start


@pytest.fixture
def root_owned(upq: UserPortique) -> Path:
    """A directory and a file of root's, readable by all, in the user's tree."""
    d = upq.base / "rootdir"
    d.mkdir(mode=0o755, exist_ok=True)
    (d / "f").write_text("root's\n")
    os.chmod(d / "f", 0o644)
    return d


ATTEMPTS = (
    "echo pwned >> /h/f",
    "touch /h/new",
    "rm -f /h/f",
    "chmod 666 /h/f",
    "chown 0:0 /h/f",
    "ln /h/f /h/hard",
    "mount -o remount,rw,bind /h && echo pwned >> /h/f",
    "echo pwned >> /hostetc/hostname",
)


@pytest.mark.parametrize("privileged", [False, True], ids=["default", "privileged"])
def test_root_inside_cannot_write_roots_host_files(
    upq: UserPortique, root_owned: Path, privileged: bool
) -> None:
    before = (root_owned / "f").read_text(), os.stat(root_owned / "f")
    hostname = Path("/etc/hostname").read_bytes()
    script = "; ".join(f"( {a} ) 2>/dev/null && echo 'ESCAPED: {a}'" for a in ATTEMPTS)
    flags = ["--privileged"] if privileged else []
    out = upq.ok(
        "run",
        "--rm",
        *flags,
        "--network",
        "none",
        "-v",
        f"{root_owned}:/h",
        "-v",
        "/etc:/hostetc",
        "busybox",
        "sh",
        "-c",
        f"{script}; id -u",
    )
    assert "ESCAPED" not in out, out
    assert out.strip().splitlines()[-1] == "0"
    after = (root_owned / "f").read_text(), os.stat(root_owned / "f")
    assert after[0] == before[0]
    assert (after[1].st_uid, after[1].st_mode) == (0, stat.S_IFREG | 0o644)
    assert sorted(os.listdir(root_owned)) == ["f"]
    assert Path("/etc/hostname").read_bytes() == hostname


def test_shadow_stays_unreadable(upq: UserPortique) -> None:
    p = upq("run", "--rm", "--network", "none", "-v", "/etc/shadow:/x", "busybox", "cat", "/x")
    assert p.returncode != 0
    assert "root:" not in p.stdout


def test_files_made_in_the_users_directory_are_the_users(upq: UserPortique) -> None:
    (upq.base / "shared").mkdir(exist_ok=True)
    d = upq.give(upq.base / "shared")
    upq.ok(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{d}:/s",
        "busybox",
        "sh",
        "-c",
        "echo mine > /s/root-made && echo theirs > /s/other && chown 1000:1000 /s/other",
    )
    assert os.stat(d / "root-made").st_uid == upq.uid
    assert os.stat(d / "other").st_uid == subuid_start(TEST_USER) + 999


def test_a_setuid_root_program_made_inside_is_the_users_outside(upq: UserPortique) -> None:
    (upq.base / "suid").mkdir(exist_ok=True)
    d = upq.give(upq.base / "suid")
    upq.ok(
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        "-v",
        f"{d}:/s",
        "busybox",
        "sh",
        "-c",
        "cp /bin/busybox /s/sb && chown 0:0 /s/sb && chmod 6755 /s/sb",
    )
    st = os.stat(d / "sb")
    # setuid to the user, never to the host's root
    assert (st.st_uid, st.st_gid) == (upq.uid, upq.gid)
    out = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            str(d / "sb"),
            "id",
            "-u",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert out.stdout.strip() in ("", str(upq.uid)), out
    assert out.stdout.strip() != "0"


@pytest.mark.parametrize("privileged", [False, True], ids=["default", "privileged"])
def test_no_devices_no_host_network_changes(upq: UserPortique, privileged: bool) -> None:
    flags = ["--privileged"] if privileged else []
    out = upq(
        "run",
        "--rm",
        *flags,
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/sda b 8 0 2>/dev/null && echo MADE-DEVICE;"
        " ip link add pqrdummy type dummy 2>/dev/null && echo MADE-LINK;"
        " ip link set lo down 2>/dev/null && echo LO-DOWN; echo done",
    )
    assert out.stdout.strip() == "done", out.stdout + out.stderr
    assert "pqrdummy" not in os.listdir("/sys/class/net")


@pytest.mark.parametrize(
    ("flag", "value"), [("--memory", "64m"), ("--cpus", "0.5"), ("--pids-limit", "20")]
)
def test_limits_without_a_delegated_cgroup_are_refused(
    upq: UserPortique, flag: str, value: str
) -> None:
    before = upq.ok("ps", "-aq")
    p = upq("run", "--rm", flag, value, "--network", "none", "busybox", "true")
    assert p.returncode == 125
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert flag in p.stderr
    assert "cgroup" in p.stderr
    assert upq.ok("ps", "-aq") == before
