"""linux/selfexe.py without root: the protection check, the sealed copy, the
re-execution from it, and the runtime's refusal on an unprotected interpreter."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import portique
from portique.linux import selfexe

SRC = str(Path(portique.__file__).resolve().parents[1])

# Run by a private, unprotected copy of the interpreter: what the process ends up as.
PROBE = """
import json, os, sys
from portique.linux import selfexe
selfexe.ensure_protected()
fd = int(sys.argv[1])
print(json.dumps({
    "protection": selfexe.protection(),
    "exe": os.readlink("/proc/self/exe"),
    "argv": sys.argv,
    "orig_argv": sys.orig_argv,
    "executable": sys.executable,
    "fd_open": os.path.exists(f"/proc/self/fd/{fd}"),
    "env": os.environ.get("PROBE_ENV"),
    "remounted": os.environ.get("PORTIQUE_EXE_REMOUNTED"),
    "pid": os.getpid(),
}))
"""


@pytest.fixture
def python_copy(tmp_path: Path) -> Path:
    """A copy of the interpreter in a plain directory: writable, not marked."""
    dest = tmp_path / "bin" / "python3"
    dest.parent.mkdir()
    shutil.copyfile("/proc/self/exe", dest)
    dest.chmod(0o755)
    return dest


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PROBE_ENV="kept")


def test_a_plain_file_is_not_protected(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\x7fELF")
    assert selfexe.protection(str(path)) is None


def test_an_unsealed_memfd_is_not_protected() -> None:
    fd = os.memfd_create("probe", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, b"data")
        assert selfexe.protection(f"/proc/self/fd/{fd}") is None
        # Write-sealed but still growable is not enough either.
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
        assert selfexe.protection(f"/proc/self/fd/{fd}") is None
    finally:
        os.close(fd)


def test_a_sealed_copy_is_protected_and_unchangeable(python_copy: Path) -> None:
    fd = selfexe.sealed_copy(str(python_copy))
    try:
        assert selfexe.protection(f"/proc/self/fd/{fd}") == selfexe.SEALED
        assert os.get_inheritable(fd) is False
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            assert f.read() == python_copy.read_bytes()
        # Reopened for writing (as a container would through /proc), it refuses every change.
        wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        try:
            with pytest.raises(PermissionError):
                os.pwrite(wfd, b"pwned", 0)
            with pytest.raises(PermissionError):
                os.ftruncate(wfd, 10)
            with pytest.raises(PermissionError):
                os.ftruncate(wfd, python_copy.stat().st_size + 4096)
        finally:
            os.close(wfd)
        # F_SEAL_SEAL: the seal set is final.
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SEAL
    finally:
        os.close(fd)


def test_ensure_protected_reexecutes_from_a_sealed_copy(python_copy: Path) -> None:
    r, w = os.pipe()
    try:
        proc = subprocess.run(
            [str(python_copy), "-c", PROBE, str(r)],
            env=_env(),
            pass_fds=(r,),
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.close(r)
        os.close(w)
    out = json.loads(proc.stdout)
    assert out["protection"] == selfexe.SEALED
    assert out["exe"].startswith("/memfd:")
    # The same command line (argv[0] still the file's path, so sys.prefix and
    # a venv are found as before), environment and inherited fds.
    assert out["orig_argv"] == [str(python_copy), "-c", PROBE, str(r)]
    assert out["executable"] == str(python_copy)
    assert out["fd_open"] is True
    assert out["env"] == "kept"
    assert out["remounted"] is None


def test_ensure_protected_keeps_the_pid(python_copy: Path) -> None:
    # exec, not a child: a caller waiting on the pid (containerd's shim) sees one process.
    proc = subprocess.Popen(
        [str(python_copy), "-c", PROBE, "0"], env=_env(), stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert json.loads(out)["pid"] == proc.pid


def test_an_unsealed_memfd_interpreter_is_an_error_not_a_loop(python_copy: Path) -> None:
    fd = os.memfd_create("portique-python", os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, python_copy.read_bytes())
        proc = subprocess.run(
            [str(python_copy), "-c", PROBE, "0"],
            executable=f"/proc/self/fd/{fd}",
            env=_env(),
            pass_fds=(fd,),
            capture_output=True,
            text=True,
        )
    finally:
        os.close(fd)
    assert proc.returncode == 1
    assert "which is not sealed" in proc.stderr
    assert f"[Errno {errno.EPERM}]" in proc.stderr


def test_the_runtime_refuses_to_fork_from_an_unprotected_interpreter(python_copy: Path) -> None:
    code = (
        "from portique.runtime.children import fork\n"
        "from portique.runtime.errors import ContainerError\n"
        "try:\n"
        "    fork()\n"
        "except ContainerError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [str(python_copy), "-c", code], env=_env(), capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith(f"refusing to start a container process from {python_copy}:")
    assert proc.stdout.count("\n") == 1


def test_exec_self_runs_the_same_file(python_copy: Path) -> None:
    code = (
        "import os, sys\n"
        "from portique.linux import selfexe\n"
        "if sys.argv[1] == 'first':\n"
        "    selfexe.ensure_protected()\n"
        "    selfexe.exec_self([sys.executable, '-c', sys.argv[2], 'second', sys.argv[2]])\n"
        "print(os.readlink('/proc/self/exe'), selfexe.protection(), sys.executable, sep='|')\n"
    )
    proc = subprocess.run(
        [str(python_copy), "-c", code, "first", code],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    exe, protection, executable = proc.stdout.split("|")
    # The monitor's case: the sealed copy again, not the writable file sys.executable names.
    assert exe.startswith("/memfd:")
    assert protection == selfexe.SEALED
    assert executable.strip() == str(python_copy)


def test_an_unmarked_file_is_not_remounted(python_copy: Path) -> None:
    assert selfexe.is_marked(str(python_copy)) is False
    marker = python_copy.parent / f".python3{selfexe.MARKER_SUFFIX}"
    marker.write_text("keep read-only\n")
    marker.chmod(0o666)  # writable by others: not ours to trust
    assert selfexe.is_marked(str(python_copy)) is False


def test_this_test_process_is_protected() -> None:
    # tests/conftest.py re-executes pytest when it has to: the runtime suites fork here.
    assert selfexe.protection() is not None
    assert sys.orig_argv


@pytest.mark.parametrize(
    ("module", "verb", "code", "prefix"),
    [
        ("portique", "run", 125, "portique: "),
        ("portique.cli.runc.main", "create", 1, "portique-runtime: "),
    ],
)
def test_an_entry_point_that_cannot_protect_itself_says_so_in_one_line(
    python_copy: Path, module: str, verb: str, code: int, prefix: str
) -> None:
    fd = os.memfd_create("portique-python", os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, python_copy.read_bytes())
        proc = subprocess.run(
            [str(python_copy), "-m", module, verb, "x"],
            executable=f"/proc/self/fd/{fd}",
            env=_env(),
            pass_fds=(fd,),
            capture_output=True,
            text=True,
        )
    finally:
        os.close(fd)
    assert proc.returncode == code
    assert proc.stderr.startswith(prefix + "the interpreter runs from /memfd:portique-python")
    assert proc.stderr.endswith("which is not sealed\n")
    assert proc.stderr.count("\n") == 1
