"""parse_seccomp and build_filter without loading anything (no root needed)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from portique.errors import InvalidArgument, Unsupported
from portique.oci.seccomp import Action, LinuxSeccomp, Op, SeccompArg, SeccompRule, parse_seccomp
from portique.runtime.seccomp import build_filter
from portique.runtime.seccomp_default import CLONE_NEW_MASK, default_profile


def _pfc(spec: LinuxSeccomp, tmp_path: Path) -> str:
    out = tmp_path / "filter.pfc"
    with out.open("wb") as f:
        build_filter(spec).export_pfc(f)
    return out.read_text()


def test_parse_full() -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
                },
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_TRACE",
                    "errnoRet": 1,
                    "args": [
                        {"index": 0, "value": 255, "valueTwo": 17, "op": "SCMP_CMP_MASKED_EQ"}
                    ],
                },
            ],
        },
        "linux.seccomp",
    )
    assert spec == LinuxSeccomp(
        default_action=Action.ERRNO,
        default_errno_ret=38,
        architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"),
        flags=("SECCOMP_FILTER_FLAG_LOG",),
        syscalls=(
            SeccompRule(("read", "write"), Action.ALLOW),
            SeccompRule(("personality",), Action.ALLOW, None, (SeccompArg(0, 8, Op.EQ),)),
            SeccompRule(("clone",), Action.TRACE, 1, (SeccompArg(0, 255, Op.MASKED_EQ, 17),)),
        ),
    )


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("x", "linux.seccomp: must be an object"),
        ({}, "linux.seccomp.defaultAction: required"),
        ({"defaultAction": "SCMP_ACT_MAYBE"}, "defaultAction: unknown seccomp action"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
            "defaultErrnoRet: only valid with SCMP_ACT_ERRNO",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
            "linux.seccomp.defaultErrnoRet: 70000 is out of range",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
            "unknown architecture",
        ),
        ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["FLAG_NOPE"]}, "unknown seccomp flag"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_KILL"}]},
            r"linux.seccomp.syscalls\[0\].names: required",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [], "action": "SCMP_ACT_KILL"}],
            },
            r"syscalls\[0\].names: must not be empty",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read; rm"], "action": "SCMP_ACT_KILL"}],
            },
            r"syscalls\[0\].names\[0\]: not a syscall name",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "KILL"}],
            },
            r"syscalls\[0\].action: unknown seccomp action 'KILL'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_KILL",
                        "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            r"syscalls\[0\].args\[0\].index: 6 is out of range",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_KILL",
                        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_SORTA"}],
                    }
                ],
            },
            r"syscalls\[0\].args\[0\].op: unknown comparison",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_KILL",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            r"syscalls\[0\].args\[0\].value: -1 is out of range",
        ),
    ],
)
def test_parse_rejections_name_the_field(obj: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_seccomp(obj, "linux.seccomp")


def test_build_rules_and_args(tmp_path: Path) -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_KILL_PROCESS",
                    "args": [
                        {"index": 0, "value": 0xFF, "valueTwo": 0x8, "op": "SCMP_CMP_MASKED_EQ"}
                    ],
                },
                {"names": ["no_such_syscall_xyz", "getppid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # same as default: skipped
            ],
        },
        "linux.seccomp",
    )
    flt = build_filter(spec)
    assert flt.skipped == ("no_such_syscall_xyz",)
    pfc = _pfc(spec, tmp_path)
    assert "ERRNO(13)" in pfc
    assert "mkdir" in pfc
    assert "mkdirat" in pfc
    assert "getppid" in pfc
    assert "TRAP" in pfc
    assert "KILL_PROCESS" in pfc
    assert "& 0x000000ff == 8" in pfc
    assert "getpid" not in pfc.replace("getppid", "")


def test_build_repeated_index_becomes_separate_rules(tmp_path: Path) -> None:
    # libseccomp cannot AND two tests of one argument: as runc, each test is a rule (OR).
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                    ],
                }
            ],
        },
        "linux.seccomp",
    )
    pfc = _pfc(spec, tmp_path)
    assert "== 0" in pfc
    assert "== 8" in pfc


@pytest.mark.parametrize("op", ["NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"])
def test_build_every_comparison(op: str) -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["setpriority"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 2, "value": 5, "valueTwo": 1, "op": f"SCMP_CMP_{op}"}],
                }
            ],
        },
        "linux.seccomp",
    )
    assert build_filter(spec).skipped == ()


def _actions(pfc: str) -> dict[str, str]:
    """The compiled filter's action for each syscall it names, and its default."""
    actions: dict[str, str] = {}
    key = None
    for line in pfc.splitlines():
        text = line.strip()
        if text.startswith('# filter for syscall "'):
            key = text.split('"')[1]
        elif text == "# default action":
            key = "default"
        elif text.startswith("action ") and key is not None:
            actions[key] = text.removeprefix("action ").rstrip(";")
            key = None
    return actions


@pytest.mark.parametrize(
    ("action", "compiled"),
    [
        ("SCMP_ACT_ERRNO", "ERRNO(1)"),  # EPERM unless errnoRet says otherwise
        ("SCMP_ACT_KILL", "KILL"),  # the thread, as runc
        ("SCMP_ACT_KILL_PROCESS", "KILL_PROCESS"),
        ("SCMP_ACT_KILL_THREAD", "KILL"),
        ("SCMP_ACT_TRAP", "TRAP"),
        ("SCMP_ACT_LOG", "LOG"),
        ("SCMP_ACT_TRACE", "TRACE(1)"),  # the tracer's message: EPERM, as runc
    ],
)
def test_build_every_action(action: str, compiled: str, tmp_path: Path) -> None:
    spec = parse_seccomp(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": action}]},
        "linux.seccomp",
    )
    assert _actions(_pfc(spec, tmp_path)) == {"acct": compiled, "default": "ALLOW"}


def test_build_errno_ret_reaches_the_filter(tmp_path: Path) -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": errno.ENOSYS,
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
        },
        "linux.seccomp",
    )
    assert _actions(_pfc(spec, tmp_path)) == {
        "acct": "ERRNO(13)",
        "default": f"ERRNO({errno.ENOSYS})",
    }


def test_notify_is_unsupported() -> None:
    spec = parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}],
        },
        "linux.seccomp",
    )
    with pytest.raises(Unsupported, match=r"syscalls\[0\].action: SCMP_ACT_NOTIFY"):
        build_filter(spec)


def test_default_profile_blocks_the_dangerous_calls() -> None:
    prof = default_profile()
    spec = parse_seccomp(prof, "linux.seccomp")
    assert spec.default_action is Action.ERRNO
    assert spec.default_errno_ret == errno.EPERM
    allowed = {n for r in spec.syscalls if r.action is Action.ALLOW and not r.args for n in r.names}
    for name in ("read", "write", "execve", "mmap", "futex", "socket", "chroot", "ptrace"):
        assert name in allowed, name
    for name in (
        "mount",
        "umount2",
        "unshare",
        "setns",
        "kexec_load",
        "init_module",
        "finit_module",
        "delete_module",
        "bpf",
        "keyctl",
        "add_key",
        "request_key",
        "reboot",
        "swapon",
        "swapoff",
        "open_by_handle_at",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "clone",
        "clone3",
        "personality",
    ):
        assert name not in allowed, name
    clone = [r for r in spec.syscalls if r.names == ("clone",)]
    assert clone[0].args == (SeccompArg(0, CLONE_NEW_MASK, Op.MASKED_EQ, 0),)
    clone3 = [r for r in spec.syscalls if r.names == ("clone3",)]
    assert clone3[0].action is Action.ERRNO
    assert clone3[0].errno_ret == errno.ENOSYS
    # The profile is a valid filter for this machine.
    assert set(build_filter(spec).skipped) <= {n for r in spec.syscalls for n in r.names}


def test_default_profile_follows_capabilities() -> None:
    def allowed(prof: dict[str, object]) -> set[str]:
        spec = parse_seccomp(prof, "linux.seccomp")
        return {
            n for r in spec.syscalls if r.action is Action.ALLOW and not r.args for n in r.names
        }

    admin = allowed(default_profile({"CAP_SYS_ADMIN", "SYS_TIME"}))
    assert {"mount", "unshare", "setns", "clone", "clone3", "bpf", "clock_settime"} <= admin
    assert "chroot" not in admin  # not granted in this set
    plain = allowed(default_profile(set()))
    assert "chroot" not in plain
    assert "mount" not in plain
    assert "chroot" in allowed(default_profile())  # Docker's defaults include SYS_CHROOT
    assert default_profile() == default_profile()  # a fresh, deterministic dict


def test_missing_binding_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "seccomp", None)  # import seccomp -> ImportError
    spec = parse_seccomp({"defaultAction": "SCMP_ACT_ALLOW"}, "linux.seccomp")
    with pytest.raises(Unsupported, match="binding is missing"):
        build_filter(spec)


SYSCALL_NAMES = [
    "read",
    "_llseek",
    "io_uring_setup",
    "a",
    "x" * 64,
    "x" * 65,
    "",
    "Read",
    "1read",
    "read-2",
    "read\n",
    "read\n\n",
    "\n",
    "re ad",
    "réad",
    "read\x00",
    "_",
    "a" * 63 + "\n",
    "a" * 64 + "\n",
]


@pytest.mark.parametrize("name", SYSCALL_NAMES)
def test_syscall_names_as_the_pattern_read_them(name: str) -> None:
    """is_syscall_name (no re on the start path) accepts what its pattern did."""
    import re

    from portique.oci.seccomp import is_syscall_name

    assert is_syscall_name(name) == bool(re.match(r"^[a-z_][a-z0-9_]{0,63}$", name))
