"""Compile a typed `linux.seccomp` into a libseccomp filter.

`build_filter(spec)` runs in the runtime before it forks (so mistakes surface
as one clean error, not as a dead child) and returns a `SeccompFilter`; the
container's init calls `.load()` right before execve.

libseccomp comes through its own Python binding (Debian's python3-seccomp,
`import seccomp`), imported only here and only when a config has a seccomp
section.

Choices, as runc makes them:
- a syscall name this libseccomp does not know on any of the filter's
  architectures is skipped (profiles list syscalls of newer kernels);
- a rule whose action equals the default action is skipped (libseccomp refuses
  it, and it changes nothing);
- args: comparisons on distinct argument indexes are ANDed in one rule; when an
  index repeats (libseccomp cannot AND two tests of one argument), each
  comparison becomes a rule of its own, which ORs them;
- the filter does not set no_new_privs (libseccomp's default): the runtime sets
  it from `process.noNewPrivileges`. Without it, load() needs CAP_SYS_ADMIN, so
  the caller loads before dropping capabilities in that case.
"""

from __future__ import annotations

import errno

from portique.errors import InvalidArgument, Unsupported
from portique.oci.seccomp import Action, LinuxSeccomp, Op, SeccompArg
from portique.oci.value import value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Final

__all__ = ["SeccompFilter", "build_filter"]

_OPS: Final = {
    Op.NE: "NE",
    Op.LT: "LT",
    Op.LE: "LE",
    Op.EQ: "EQ",
    Op.GE: "GE",
    Op.GT: "GT",
    Op.MASKED_EQ: "MASKED_EQ",
}
_FLAG_ATTRS: Final = {
    "SECCOMP_FILTER_FLAG_TSYNC": "CTL_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG": "CTL_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB",
    # Only meaningful with a notify listener, which portique does not offer.
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": None,
}


@value
class SeccompFilter:
    """A compiled filter; `load()` installs it in the calling process."""

    _filter: Any  # seccomp.SyscallFilter
    skipped: tuple[str, ...] = ()  # syscall names unknown on this architecture

    def load(self) -> None:
        try:
            self._filter.load()
        except (RuntimeError, OSError, ValueError) as e:
            # The binding reports "Library error (errno = -13)".
            err = _errno_of(e)
            raise OSError(err, f"seccomp load: {errno.errorcode.get(err, str(e))}") from None

    def export_pfc(self, out: BinaryIO) -> None:
        """The filter as libseccomp's readable pseudo-filter code (for debugging)."""
        self._filter.export_pfc(out)

    def export_bpf(self, out: BinaryIO) -> None:
        self._filter.export_bpf(out)


def _errno_of(e: BaseException) -> int:
    if isinstance(e, OSError) and e.errno:
        return e.errno
    text = str(e)
    if "errno = -" in text:
        try:
            return int(text.rsplit("errno = -", 1)[1].rstrip(")"))
        except ValueError:
            pass
    return errno.EINVAL


def _action(sc: Any, action: Action, errno_ret: int | None, field: str) -> int:
    match action:
        case Action.ALLOW:
            return int(sc.ALLOW)
        case Action.KILL | Action.KILL_THREAD:
            return int(sc.KILL)
        case Action.KILL_PROCESS:
            return int(sc.KILL_PROCESS)
        case Action.TRAP:
            return int(sc.TRAP)
        case Action.LOG:
            return int(sc.LOG)
        case Action.ERRNO:
            return int(sc.ERRNO(errno.EPERM if errno_ret is None else errno_ret))
        case Action.TRACE:
            return int(sc.TRACE(errno.EPERM if errno_ret is None else errno_ret))
        case Action.NOTIFY:
            raise Unsupported(f"{field}: SCMP_ACT_NOTIFY (a seccomp agent) is not supported")
    raise InvalidArgument(f"{field}: unknown seccomp action {action!r}")


def _arg(sc: Any, a: SeccompArg) -> Any:
    op = getattr(sc, _OPS[a.op])
    if a.op is Op.MASKED_EQ:
        return sc.Arg(a.index, op, a.value, a.value_two)
    return sc.Arg(a.index, op, a.value)


def build_filter(spec: LinuxSeccomp, *, field: str = "linux.seccomp") -> SeccompFilter:
    """Compile `spec`; errors name the field (InvalidArgument/Unsupported)."""
    try:
        import seccomp as sc  # lazy: only containers with a seccomp section pay for it
    except ImportError:
        raise Unsupported(
            f"{field}: libseccomp's Python binding is missing",
            hint="apt-get install python3-seccomp",
        ) from None

    default = _action(sc, spec.default_action, spec.default_errno_ret, f"{field}.defaultAction")
    flt = sc.SyscallFilter(default)
    flt.set_attr(sc.Attr.CTL_NNP, 0)
    for i, name in enumerate(spec.architectures):
        arch = getattr(sc.Arch, name.removeprefix("SCMP_ARCH_"), None)
        if arch is None:
            raise Unsupported(f"{field}.architectures[{i}]: {name} unknown to libseccomp")
        if not flt.exist_arch(arch):
            try:
                flt.add_arch(arch)
            except RuntimeError as e:
                raise Unsupported(f"{field}.architectures[{i}]: cannot add {name}: {e}") from None
    for flag in spec.flags:
        attr = _FLAG_ATTRS[flag]
        if attr is not None:
            flt.set_attr(getattr(sc.Attr, attr), 1)
    arches = [sc.Arch.NATIVE, *(getattr(sc.Arch, a[10:]) for a in spec.architectures)]
    skipped: list[str] = []
    for i, rule in enumerate(spec.syscalls):
        rfield = f"{field}.syscalls[{i}]"
        action = _action(sc, rule.action, rule.errno_ret, f"{rfield}.action")
        if action == default:
            continue
        indexes = [a.index for a in rule.args]
        if len(set(indexes)) == len(indexes):
            arg_sets = [[_arg(sc, a) for a in rule.args]]
        else:
            arg_sets = [[_arg(sc, a)] for a in rule.args]
        for name in rule.names:
            # resolve_syscall gives -1 (__NR_SCMP_ERROR) for a name unknown on an arch.
            if all(sc.resolve_syscall(arch, name) == -1 for arch in arches):
                skipped.append(name)
                continue
            for args in arg_sets:
                try:
                    flt.add_rule(action, name, *args)
                except RuntimeError as e:
                    raise InvalidArgument(f"{rfield}: cannot add a rule for {name}: {e}") from None
    return SeccompFilter(flt, tuple(skipped))
