"""The container's seccomp profile constrains its program, never the runtime.

Profiles that deny what the runtime itself calls while setting a process up
(close_range, close, getcwd, fcntl, prctl, capset, setresuid, chdir, ...)
must still start the container, promptly: the filter is the last step
before execve. Before, such a profile made every create hang for minutes
(closing fds fell back to two billion close(2) calls) and then fail.

Two kinds of profile, each with and without no_new_privs (without it the
filter needs CAP_SYS_ADMIN, which the container does not get):
- a small allow-list with EPERM for the rest (runtime-tools' default and
  hand-written profiles are allow-lists): only what busybox's echo needs;
- allow-all with SCMP_ACT_KILL_PROCESS for the runtime's calls: any of them
  made after the filter kills the process, so the create or exec fails.
Each test is bounded by a timeout well under the old hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from portique.errors import CommandNotExecutable
from portique.linux.caps import to_mask
from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, new_id, run_container

# What busybox's `echo ok` (static) calls, plus execve and the memory calls
# an interpreter may make: nothing the runtime needs to set a process up.
ECHO_ONLY = [
    "execve",
    "exit_group",
    "exit",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "readlink",
    "getrandom",
    "getuid",
    "write",
    "rt_sigreturn",
]

# What the runtime calls while it turns a fork into the container process.
RUNTIME_CALLS = [
    "close_range",
    "close",
    "getcwd",
    "fcntl",
    "capset",
    "capget",
    "setresuid",
    "setresgid",
    "setgroups",
    "chdir",
    "fchdir",
    "umask",
    "setsid",
    "openat",
    "newfstatat",
    "statx",
    "faccessat2",
    "ioctl",
    "dup2",
    "dup3",
    "sendto",
    "sendmsg",
    "recvmsg",
    "poll",
    "setrlimit",
    "sethostname",
    "mount",
    "pivot_root",
]

PR_GET_NAME = 16  # busybox asks its own name; every other prctl is the runtime's


def allow_list(names: list[str]) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }


def kill_on(names: list[str]) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_KILL_PROCESS"},
            {
                "names": ["prctl"],
                "action": "SCMP_ACT_KILL_PROCESS",
                "args": [{"index": 0, "value": PR_GET_NAME, "op": "SCMP_CMP_NE"}],
            },
        ],
    }


def config(args: list[str], profile: dict[str, Any], nnp: bool) -> dict[str, Any]:
    cfg = make_config(args)
    cfg["process"]["noNewPrivileges"] = nnp
    cfg["linux"]["seccomp"] = profile
    return cfg


@pytest.fixture(autouse=True)
def _x86_64() -> None:
    assert os.uname().machine == "x86_64", "the allow-list names x86_64 calls"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_allow_list_without_the_runtimes_calls_starts_promptly(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, nnp: bool
) -> None:
    profile = allow_list(ECHO_ONLY)
    code, out = run_container(rt, tmp_path, busybox_rootfs, config(["echo", "ok"], profile, nnp))
    assert (code, out) == (0, "ok\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("denied", [["close_range"], ["getcwd"], ["close_range", "getcwd"]])
def test_issue_profile_without_close_range_or_getcwd(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, denied: list[str]
) -> None:
    # The report's case: an older allow-list knows no close_range, and runc's
    # default no_new_privs is off. Closing fds after the filter then fell
    # back to ~2**31 close(2) calls (create hung ~10 minutes); a profile
    # without getcwd failed entering the cwd.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    code, out = run_container(rt, tmp_path, busybox_rootfs, config(["echo", "ok"], profile, False))
    assert (code, out) == (0, "ok\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_nothing_the_runtime_calls_comes_after_the_filter(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, nnp: bool
) -> None:
    profile = kill_on(RUNTIME_CALLS)
    code, out = run_container(rt, tmp_path, busybox_rootfs, config(["echo", "ok"], profile, nnp))
    assert (code, out) == (0, "ok\n")


@pytest.mark.timeout(60)
def test_the_filter_is_in_force_for_the_program(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # The same profile kills the program when *it* makes one of those calls.
    profile = kill_on(["getcwd"])
    code, _ = run_container(rt, tmp_path, busybox_rootfs, config(["pwd"], profile, True))
    assert code == 128 + 31  # SIGSYS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_exec_loads_the_filter_last_too(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, nnp: bool
) -> None:
    cfg = config(["sleep", "60"], kill_on(RUNTIME_CALLS), nnp)
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    out = Outputs(tmp_path)
    try:
        rt.create(cid, bundle, stdio=out.stdio)
        rt.start(cid)
        proc = parse_process({**cfg["process"], "args": ["echo", "exec-ok"]})
        assert rt.exec(cid, proc, stdio=out.stdio) == 0
        assert out.text() == "exec-ok\n"
    finally:
        rt.delete(cid, force=True)
        out.close()


@pytest.mark.timeout(60)
def test_a_failed_execve_after_the_filter_is_still_reported(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # An executable file that is no program: only execve itself can tell
    # (ENOEXEC), after the filter; the report must not need sendmsg/close.
    cfg = config(["/bad"], kill_on(RUNTIME_CALLS), True)
    cfg["mounts"].append(
        {"destination": "/bad", "source": str(tmp_path / "bad"), "options": ["bind", "ro"]}
    )
    (tmp_path / "bad").write_bytes(b"\x7fELF-not-really")
    (tmp_path / "bad").chmod(0o755)
    with pytest.raises(CommandNotExecutable, match="exec format error"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert rt.list() == []


def test_created_container_waits_with_the_filter_not_yet_loaded(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # Until `start`, the init is the runtime's: no filter on it yet
    # (/proc/<pid>/status: Seccomp 0), then the program runs filtered (2).
    cfg = config(["grep", "Seccomp:", "/proc/self/status"], kill_on(["close_range"]), True)
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    out = Outputs(tmp_path)
    try:
        s = rt.create(cid, bundle, stdio=out.stdio)
        with open(f"/proc/{s.pid}/status") as f:
            assert "Seccomp:\t0\n" in f.read()
        rt.start(cid)
        deadline = time.monotonic() + 20
        while rt.state(cid).status is not Status.STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.text().split() == ["Seccomp:", "2"]
    finally:
        rt.delete(cid, force=True)
        out.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("uid", [0, 1000])
def test_sys_admin_kept_for_the_filter_never_reaches_the_program(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, uid: int
) -> None:
    # Without no_new_privs the filter needs CAP_SYS_ADMIN, kept until execve;
    # the program must still get exactly its own sets (here: none of it).
    cfg = config(["grep", "^Cap[IPEA]", "/proc/self/status"], kill_on(["close_range"]), False)
    cfg["process"]["user"] = {"uid": uid, "gid": uid}
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    caps = {k.rstrip(":"): int(v, 16) for k, v in (line.split() for line in out.splitlines())}
    sys_admin = 1 << 21
    assert not any(v & sys_admin for v in caps.values()), caps
    expected = to_mask(cfg["process"]["capabilities"]["permitted"])
    # Root gets its bounding set across execve, another uid nothing (no ambient).
    assert caps["CapPrm"] == (expected if uid == 0 else 0)
    assert caps["CapEff"] == (expected if uid == 0 else 0)


@pytest.mark.timeout(60)
def test_non_root_user_without_no_new_privs(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # busybox stats its config file when not run by root: allow newfstatat.
    profile = kill_on([c for c in RUNTIME_CALLS if c != "newfstatat"])
    cfg = config(["echo", "ok"], profile, False)
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10]}
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert (code, out) == (0, "ok\n")
