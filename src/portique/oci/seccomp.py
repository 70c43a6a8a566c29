"""`linux.seccomp` of an OCI runtime config, parsed from hostile JSON.

`parse_seccomp(obj, field)` returns a frozen `LinuxSeccomp` or raises
`InvalidArgument` naming the field. Pure: names of syscalls are checked for
shape only; whether this architecture knows them is runtime/seccomp.py's
business (unknown ones are skipped there, as runc does).
"""

from __future__ import annotations

from portique.errors import InvalidArgument
from portique.oci.value import value

from .resources import (
    UINT64_MAX,
    check_int,
    check_list,
    check_object,
    check_str,
)

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from enum import StrEnum
    from typing import Final
else:
    # enum.StrEnum's behaviour without importing enum (oci/strenum.py).
    from portique.oci.strenum import StrEnum


class Action(StrEnum):
    KILL = "SCMP_ACT_KILL"  # = KILL_THREAD
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    TRAP = "SCMP_ACT_TRAP"
    ERRNO = "SCMP_ACT_ERRNO"
    TRACE = "SCMP_ACT_TRACE"
    ALLOW = "SCMP_ACT_ALLOW"
    LOG = "SCMP_ACT_LOG"
    NOTIFY = "SCMP_ACT_NOTIFY"


class Op(StrEnum):
    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"


# The architectures of the runtime spec's linux.seccomp, the one list of them
# (runtime/features.py reports it; seccomp_default.py picks from it per host).
ARCHES: Final = frozenset(
    {
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64",
    }
)

FLAGS: Final = frozenset(
    {
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
)

_NAME_FIRST: Final = frozenset("abcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS: Final = _NAME_FIRST | frozenset("0123456789")


def is_syscall_name(s: str) -> bool:
    """What re.match(r"^[a-z_][a-z0-9_]{0,63}$", s) accepts (its "$" also
    matches before a final newline), without re: a profile names ~350 calls,
    and importing re (with enum) would cost every start that has one ~2 ms."""
    core = s[:-1] if s.endswith("\n") else s
    return 0 < len(core) <= 64 and core[0] in _NAME_FIRST and _NAME_CHARS.issuperset(core)


MAX_RULES: Final = 4096


@value
class SeccompArg:
    index: int  # 0..5
    value: int  # uint64
    op: Op
    value_two: int = 0  # "valueTwo": MASKED_EQ compares (arg & value) == valueTwo


@value
class SeccompRule:
    names: tuple[str, ...]
    action: Action
    errno_ret: int | None = None  # "errnoRet"
    args: tuple[SeccompArg, ...] = ()


@value
class LinuxSeccomp:
    default_action: Action  # "defaultAction"
    default_errno_ret: int | None = None  # "defaultErrnoRet"
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    syscalls: tuple[SeccompRule, ...] = ()
    listener_path: str | None = None  # "listenerPath" (for SCMP_ACT_NOTIFY)


def _action(obj: object, field: str) -> Action:
    s = check_str(obj, field, max_len=64)
    try:
        return Action(s)
    except ValueError:
        raise InvalidArgument(f"{field}: unknown seccomp action {s!r}") from None


def _errno(d: dict[str, object], key: str, field: str, action: Action) -> int | None:
    if d.get(key) is None:
        return None
    if action not in (Action.ERRNO, Action.TRACE):
        raise InvalidArgument(f"{field}.{key}: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    # The kernel's SECCOMP_RET_DATA is 16 bits.
    return check_int(d[key], f"{field}.{key}", 0, 0xFFFF)


def _parse_arg(obj: object, field: str) -> SeccompArg:
    d = check_object(obj, field)
    for k in ("index", "value", "op"):
        if k not in d:
            raise InvalidArgument(f"{field}.{k}: required")
    op_s = check_str(d["op"], f"{field}.op", max_len=64)
    try:
        op = Op(op_s)
    except ValueError:
        raise InvalidArgument(f"{field}.op: unknown comparison {op_s!r}") from None
    return SeccompArg(
        index=check_int(d["index"], f"{field}.index", 0, 5),
        value=check_int(d["value"], f"{field}.value", 0, UINT64_MAX),
        value_two=check_int(d.get("valueTwo", 0), f"{field}.valueTwo", 0, UINT64_MAX),
        op=op,
    )


def _parse_rule(obj: object, field: str) -> SeccompRule:
    d = check_object(obj, field)
    if "names" not in d:
        raise InvalidArgument(f"{field}.names: required")
    names = check_list(d["names"], f"{field}.names", limit=1024)
    if not names:
        raise InvalidArgument(f"{field}.names: must not be empty")
    for i, n in enumerate(names):
        s = check_str(n, f"{field}.names[{i}]", max_len=64)
        if not is_syscall_name(s):
            raise InvalidArgument(f"{field}.names[{i}]: not a syscall name ({s!r})")
    if "action" not in d:
        raise InvalidArgument(f"{field}.action: required")
    action = _action(d["action"], f"{field}.action")
    args = check_list(d.get("args") or [], f"{field}.args", limit=6 * 8)
    return SeccompRule(
        names=tuple(str(n) for n in names),
        action=action,
        errno_ret=_errno(d, "errnoRet", field, action),
        args=tuple(_parse_arg(a, f"{field}.args[{i}]") for i, a in enumerate(args)),
    )


def parse_seccomp(obj: object, field: str = "linux.seccomp") -> LinuxSeccomp:
    d = check_object(obj, field)
    if "defaultAction" not in d:
        raise InvalidArgument(f"{field}.defaultAction: required")
    default = _action(d["defaultAction"], f"{field}.defaultAction")
    arches = check_list(d.get("architectures") or [], f"{field}.architectures", limit=32)
    for i, a in enumerate(arches):
        if check_str(a, f"{field}.architectures[{i}]", max_len=32) not in ARCHES:
            raise InvalidArgument(f"{field}.architectures[{i}]: unknown architecture {a!r}")
    flags = check_list(d.get("flags") or [], f"{field}.flags", limit=16)
    for i, f in enumerate(flags):
        if check_str(f, f"{field}.flags[{i}]", max_len=64) not in FLAGS:
            raise InvalidArgument(f"{field}.flags[{i}]: unknown seccomp flag {f!r}")
    rules = check_list(d.get("syscalls") or [], f"{field}.syscalls", limit=MAX_RULES)
    listener = d.get("listenerPath")
    return LinuxSeccomp(
        default_action=default,
        default_errno_ret=_errno(d, "defaultErrnoRet", field, default),
        architectures=tuple(str(a) for a in arches),
        flags=tuple(str(f) for f in flags),
        syscalls=tuple(_parse_rule(r, f"{field}.syscalls[{i}]") for i, r in enumerate(rules)),
        listener_path=None if listener is None else check_str(listener, f"{field}.listenerPath"),
    )


__all__ = [
    "ARCHES",
    "FLAGS",
    "Action",
    "LinuxSeccomp",
    "Op",
    "SeccompArg",
    "SeccompRule",
    "parse_seccomp",
]
