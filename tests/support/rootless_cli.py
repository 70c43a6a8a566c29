"""Run `portique` as an ordinary user: the rootless tests (tests/integration/rootless).

The users are scripts/setup.sh's (never made by a test: the host guard checks
/etc/passwd and friends): `portique-test` with a subordinate range in
/etc/subuid and /etc/subgid, `portique-nosub` without one. Each engine gets a
directory of its own under /tmp (the user must reach it; a pytest tmp dir is
root's, mode 0700) holding its HOME, XDG_DATA_HOME and XDG_RUNTIME_DIR, and
the CLI runs through setpriv with a clean environment, so nothing of root's
(PORTIQUE_ROOT, a venv, HOME) leaks in.

`close()` removes the engine's containers, ends its pause process (by the
pid it recorded: engine/rootless.py) and deletes the directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PORTIQUE = str(Path(sys.executable).parent / "portique")
TEST_USER = "portique-test"
NOSUB_USER = "portique-nosub"


def user_ids(name: str) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise AssertionError(
            f"user {name} is missing: run scripts/setup.sh (it makes it)"
        ) from None
    return pw.pw_uid, pw.pw_gid


def subuid_start(name: str) -> int:
    for line in Path("/etc/subuid").read_text().splitlines():
        parts = line.split(":")
        if len(parts) == 3 and parts[0] == name:
            return int(parts[1])
    raise AssertionError(f"{name} has no /etc/subuid range: run scripts/setup.sh")


@dataclass
class UserPortique:
    user: str
    base: Path
    uid: int = 0
    gid: int = 0
    env: dict[str, str] = field(default_factory=dict)
    # A cgroup v2 directory every command starts in (moved there by root
    # before setpriv): a subtree delegated to the user.
    cgroup: Path | None = None

    @classmethod
    def make(cls, user: str, tag: str, *, runtime_dir: bool = True) -> UserPortique:
        uid, gid = user_ids(user)
        reach = subprocess.run(
            [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                "test",
                "-x",
                PORTIQUE,
            ],
            check=False,
        )
        assert reach.returncode == 0, (
            f"{user} cannot run {PORTIQUE}: the checkout must be readable by all"
        )
        base = Path(f"/tmp/pqr-{tag}-{os.getpid()}")
        if base.exists():
            subprocess.run(["rm", "-rf", str(base)], check=True)
        base.mkdir(mode=0o700)
        for sub in ("home", "data", "run"):
            (base / sub).mkdir(mode=0o700)
        for made in (base, base / "home", base / "data", base / "run"):
            os.chown(made, uid, gid)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(base / "home"),
            "XDG_DATA_HOME": str(base / "data"),
            "LANG": "C.UTF-8",
        }
        if runtime_dir:
            env["XDG_RUNTIME_DIR"] = str(base / "run")
        return cls(user, base, uid, gid, env)

    @property
    def root(self) -> Path:
        return self.base / "data" / "portique"

    @property
    def runroot(self) -> Path:
        if "XDG_RUNTIME_DIR" in self.env:
            return self.base / "run" / "portique"
        return Path(f"/tmp/portique-{self.uid}")

    def argv(self, *args: str) -> list[str]:
        enter = []
        if self.cgroup is not None:
            move = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
            enter = ["sh", "-c", move, str(self.cgroup)]
        return [
            *enter,
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--",
            PORTIQUE,
            *args,
        ]

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 90, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            cwd=self.base,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{self.user}: portique {' '.join(args)} -> {proc.returncode}: {proc.stderr}"
            )
        return proc

    def ok(self, *args: str, timeout: float = 90) -> str:
        return self(*args, timeout=timeout, check=True).stdout

    def pause_pid(self) -> int | None:
        try:
            return int((self.runroot / "pause.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def give(self, path: Path) -> Path:
        """Hand a file or directory the test made to the user."""
        os.chown(path, self.uid, self.gid)
        return path

    def close(self) -> None:
        ids = self("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            self("rm", "-f", *ids, timeout=120)
        # Ends the engine's network namespace, its slirp4netns and the pause
        # process; then whatever is still recorded, by pid.
        self("system", "migrate", timeout=120)
        for pid_file in (self.runroot / "netns" / "slirp.pid",):
            with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        pid = self.pause_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        subprocess.run(["rm", "-rf", str(self.base)], check=False)
        if "XDG_RUNTIME_DIR" not in self.env:
            subprocess.run(["rm", "-rf", str(self.runroot)], check=False)


def busybox_tar(dest: Path) -> Path:
    """A tar of a busybox root (support/rootfs.py) the users can read."""
    import tarfile

    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    subprocess.run(["rm", "-rf", str(rootfs)], check=True)
    os.chmod(tar_path, 0o644)
    return tar_path


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's parent may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(predicate: object, timeout: float = 30.0) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
