"""Seccomp filters loaded for real: each check runs in a forked child that
loads the filter and reports what the kernel did."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.oci.seccomp import parse_seccomp
from portique.runtime.seccomp import SeccompFilter, build_filter
from portique.runtime.seccomp_default import default_profile

libc = ctypes.CDLL(None, use_errno=True)
SYS_UNSHARE = 272  # x86_64
SYS_CLONE3 = 435
SYS_KEYCTL = 250
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000


def _raw(nr: int, *args: int) -> int:
    """A raw syscall: the errno it failed with, or 0."""
    ret = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if ret == -1 else 0


def _in_child(flt: SeccompFilter, probe: Callable[[], object]) -> tuple[int, object]:
    """Fork, load `flt`, run `probe`; return (wait status, probe's JSON result)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        code = 0
        try:
            flt.load()
            os.write(w, json.dumps(probe()).encode())
        except BaseException as e:
            os.write(w, json.dumps({"error": repr(e)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(data) if data else None


def _spec(rules: list[dict[str, object]], default: str = "SCMP_ACT_ALLOW") -> SeccompFilter:
    return build_filter(
        parse_seccomp({"defaultAction": default, "syscalls": rules}, "linux.seccomp")
    )


def _errno_of(fn: Callable[[], object]) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno or -1
    return 0


@pytest.fixture(autouse=True)
def _x86_64() -> None:
    assert os.uname().machine == "x86_64", "raw syscall numbers below are x86_64's"


def test_errno_ret_is_returned(tmp_path: Path) -> None:
    flt = _spec([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}])
    status, got = _in_child(
        flt,
        lambda: {
            "mkdir": _errno_of(lambda: os.mkdir(tmp_path / "d")),
            "write": _errno_of(lambda: (tmp_path / "f").write_text("still allowed")),
        },
    )
    assert os.WIFEXITED(status), got
    assert os.WEXITSTATUS(status) == 0, got
    assert got == {"mkdir": errno.EACCES, "write": 0}
    assert not (tmp_path / "d").exists()
    assert (tmp_path / "f").read_text() == "still allowed"


def test_default_errno_is_eperm() -> None:
    flt = _spec([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}])
    status, got = _in_child(flt, lambda: _raw(110))  # getppid
    assert os.WIFEXITED(status)
    assert got == errno.EPERM


def test_argument_filters() -> None:
    # EQ on socket's domain: only IPv6 sockets are refused.
    # MASKED_EQ on openat's flags: O_CREAT is refused, plain opens are not.
    flt = _spec(
        [
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EAFNOSUPPORT,
                "args": [{"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"}],
            },
            {
                "names": ["openat"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EROFS,
                "args": [
                    {
                        "index": 2,
                        "value": os.O_CREAT,
                        "valueTwo": os.O_CREAT,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            },
            {
                "names": ["setpriority"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EDOM,
                "args": [{"index": 2, "value": 10, "op": "SCMP_CMP_GT"}],
            },
        ]
    )

    def probe() -> dict[str, int]:
        def sock(family: int) -> None:
            socket.socket(family, socket.SOCK_STREAM).close()

        def create() -> None:
            os.close(os.open("/tmp/portique-sc-never", os.O_CREAT | os.O_WRONLY, 0o600))

        return {
            "inet": _errno_of(lambda: sock(socket.AF_INET)),
            "inet6": _errno_of(lambda: sock(socket.AF_INET6)),
            "open": _errno_of(lambda: os.close(os.open("/etc/hostname", os.O_RDONLY))),
            "create": _errno_of(create),
            "nice5": _errno_of(lambda: os.setpriority(os.PRIO_PROCESS, 0, 5)),
            "nice15": _errno_of(lambda: os.setpriority(os.PRIO_PROCESS, 0, 15)),
        }

    status, got = _in_child(flt, probe)
    assert os.WIFEXITED(status), got
    assert got == {
        "inet": 0,
        "inet6": errno.EAFNOSUPPORT,
        "open": 0,
        "create": errno.EROFS,
        "nice5": 0,
        "nice15": errno.EDOM,
    }
    assert not Path("/tmp/portique-sc-never").exists()


@pytest.mark.parametrize(
    ("action", "sig"),
    [
        ("SCMP_ACT_KILL_PROCESS", signal.SIGSYS),
        ("SCMP_ACT_KILL", signal.SIGSYS),
        ("SCMP_ACT_KILL_THREAD", signal.SIGSYS),
        ("SCMP_ACT_TRAP", signal.SIGSYS),
    ],
)
def test_kill_and_trap_actions(action: str, sig: int) -> None:
    flt = _spec([{"names": ["getppid"], "action": action}])
    status, got = _in_child(flt, lambda: os.getppid())
    assert got is None  # never got to report
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == sig


def test_log_action_allows() -> None:
    flt = _spec([{"names": ["getppid"], "action": "SCMP_ACT_LOG"}], default="SCMP_ACT_ALLOW")
    status, got = _in_child(flt, lambda: os.getppid())
    assert os.WIFEXITED(status)
    assert got == os.getpid()


def test_default_profile_blocks_namespaces_and_keys() -> None:
    flt = build_filter(parse_seccomp(default_profile(), "linux.seccomp"))

    def probe() -> dict[str, int]:
        child = os.fork()
        if child == 0:
            os._exit(7)
        _, st = os.waitpid(child, 0)
        ran = subprocess.run(["/bin/busybox", "echo", "hi"], capture_output=True, check=False)
        return {
            "unshare_user": _raw(SYS_UNSHARE, CLONE_NEWUSER),
            "unshare_mnt": _raw(SYS_UNSHARE, CLONE_NEWNS),
            "clone3": _raw(SYS_CLONE3, 0, 0),
            "keyctl": _raw(SYS_KEYCTL, 0, 0, 0, 0, 0),
            "mount": _raw(165, 0, 0, 0, 0, 0),
            "fork_exit": os.WEXITSTATUS(st),
            "exec_ok": int(ran.stdout == b"hi\n"),
        }

    status, got = _in_child(flt, probe)
    assert os.WIFEXITED(status), got
    assert got == {
        "unshare_user": errno.EPERM,
        "unshare_mnt": errno.EPERM,
        "clone3": errno.ENOSYS,  # so libc falls back to clone, whose flags are checked
        "keyctl": errno.EPERM,
        "mount": errno.EPERM,
        "fork_exit": 7,
        "exec_ok": 1,
    }


def test_default_profile_with_sys_admin_allows_unshare() -> None:
    flt = build_filter(parse_seccomp(default_profile({"CAP_SYS_ADMIN"}), "linux.seccomp"))
    status, got = _in_child(flt, lambda: _raw(SYS_UNSHARE, CLONE_NEWNS))
    assert os.WIFEXITED(status)
    assert got == 0


def test_trace_without_a_tracer_fails_the_call() -> None:
    # SECCOMP_RET_TRACE with nobody attached: the kernel skips the call, ENOSYS.
    flt = _spec([{"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}])
    status, got = _in_child(flt, lambda: _raw(110))
    assert os.WIFEXITED(status)
    assert got == errno.ENOSYS


def test_filter_flags_load() -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}],
        },
        "linux.seccomp",
    )
    status, got = _in_child(build_filter(spec), lambda: _raw(110))
    assert os.WIFEXITED(status)
    assert got == errno.EDOM
