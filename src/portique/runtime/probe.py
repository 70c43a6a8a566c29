"""Test, not read: what a running container's seccomp filter denies and what
its device cgroup lets it open.

A profile says what was asked for; the kernel enforces what was installed.
So the syscall probe copies the container's filters out of the kernel
(PTRACE_SECCOMP_GET_FILTER on its init, linux/ptrace.py), joins the
container's namespaces (the user namespace first: capabilities are relative
to it) and makes each dangerous call twice, in a fresh child each time:
once without a filter and once under the container's filters. Both runs keep
every capability, because a seccomp filter sees only the syscall number and
its arguments: a different answer under the filter is the filter's doing.

Two namespaces are not joined, on purpose: the pid namespace, so that no
process of the container can see, signal or ptrace a probe that holds more
capabilities than it does; and the mount namespace, so that the probe, a
Python interpreter, never resolves a path (an import) in the container's
files. Neither changes what a seccomp filter answers. The probe is also
non-dumpable and holds no fd of ours.

The arguments are chosen so the kernel rejects the call before it acts (a
NULL path, an unknown command, contradictory flags): EFAULT or EINVAL means
"the call reached the kernel", and nothing changes in the container or on
the host. Where no such arguments exist (acct with a real path, settimeofday)
the call is not probed.

Without CAP_SYS_ADMIN in the initial user namespace (rootless), the kernel
will not hand the filters out; the caller may then pass the programs
compiled from the container's config.json (`programs_from_spec`) and the
report says so.

The device probe makes device nodes in a private tmpfs (its own mount
namespace), moves itself into the container's cgroup (v1: the devices
hierarchy; v2: the unified one, whose rules are an eBPF program) and opens
each node read-only: EPERM is the device cgroup saying no.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from portique.linux import ns, prctl
from portique.linux import proc as procfs
from portique.linux.seccomp import load_filter, syscall_errno

if TYPE_CHECKING:
    from collections.abc import Callable

    from portique.oci.seccomp import LinuxSeccomp

__all__ = [
    "DEVICES",
    "PROBES",
    "DeviceResult",
    "ProbeError",
    "SyscallProbe",
    "SyscallResult",
    "probe_devices",
    "probe_syscalls",
    "programs_from_spec",
    "seccomp_programs",
]

_TIMEOUT = 30.0
# Namespaces in the order `exec` joins them, user first (it grants the
# capabilities for the others); not pid nor mnt (see the module docstring).
_JOIN_ORDER = ("user", "ipc", "uts", "net", "cgroup", "time")
_CLONE_FLAGS = {name: flag for flag, name in ns.NAMESPACES.values()}


class ProbeError(Exception):
    """A probe could not run (its reason is part of the report, not a failure)."""


@dataclass(frozen=True, slots=True)
class SyscallProbe:
    name: str
    call: str  # the call as made, for the reader
    args: tuple[int, ...]
    grants: str  # what the call would give a container


_NULL = 0
# Every probe below is rejected by the kernel's argument checks before it acts.
PROBES: tuple[SyscallProbe, ...] = (
    SyscallProbe("mount", "mount(NULL, NULL, NULL, 0, NULL)", (0, 0, 0, 0, 0),
                 "mount file systems: a host disk, a new /proc or /sys"),
    SyscallProbe("umount2", "umount2(NULL, 0x100)", (0, 0x100),
                 "unmount the masks over /proc and /sys"),
    SyscallProbe("pivot_root", "pivot_root(NULL, NULL)", (0, 0), "change the root file system"),
    SyscallProbe("open_tree", "open_tree(-1, NULL, 0x40000000)", (-1, 0, 0x40000000),
                 "the new mount API: clone and attach mounts"),
    SyscallProbe("fsopen", "fsopen(NULL, 0)", (0, 0), "the new mount API: create a file system"),
    SyscallProbe("unshare", "unshare(CLONE_NEWNS|CLONE_VFORK)", (0x20000 | 0x4000,),
                 "make new namespaces (a user namespace opens many kernel paths)"),
    SyscallProbe("clone", "clone(CLONE_NEWNS|CLONE_FS, 0, 0, 0, 0)", (0x20000 | 0x200, 0, 0, 0, 0),
                 "start a process in new namespaces"),
    SyscallProbe("clone3", "clone3(NULL, 0)", (0, 0),
                 "clone with flags seccomp cannot inspect"),
    SyscallProbe("setns", "setns(-1, 0)", (-1, 0), "enter another namespace through an fd"),
    SyscallProbe("keyctl", "keyctl(0x7fff)", (0x7FFF, 0, 0, 0, 0),
                 "the kernel keyring, which is not namespaced"),
    SyscallProbe("add_key", "add_key(NULL, NULL, NULL, 0, 0)", (0, 0, 0, 0, 0),
                 "add keys to the shared kernel keyring"),
    SyscallProbe("request_key", "request_key(NULL, NULL, NULL, 0)", (0, 0, 0, 0),
                 "look up keys in the shared kernel keyring"),
    SyscallProbe("bpf", "bpf(0x7fff, NULL, 0)", (0x7FFF, 0, 0),
                 "load eBPF programs into the kernel"),
    SyscallProbe("perf_event_open", "perf_event_open(NULL, 0, -1, -1, 0)", (0, 0, -1, -1, 0),
                 "observe the host's processes and kernel"),
    SyscallProbe("ptrace", "ptrace(0x7fff, -1, 0, 0)", (0x7FFF, -1, 0, 0),
                 "trace and control other processes"),
    SyscallProbe("userfaultfd", "userfaultfd(0x3)", (0x3,),
                 "stall the kernel on page faults (a tool of kernel exploits)"),
    SyscallProbe("io_uring_setup", "io_uring_setup(1, NULL)", (1, 0),
                 "io_uring, a large attack surface"),
    SyscallProbe("open_by_handle_at", "open_by_handle_at(-1, NULL, 0)", (-1, 0, 0),
                 "open host files by handle (the 'shocker' escape)"),
    SyscallProbe("init_module", "init_module(NULL, 0, NULL)", (0, 0, 0),
                 "load code into the host kernel"),
    SyscallProbe("finit_module", "finit_module(-1, NULL, 0)", (-1, 0, 0),
                 "load code into the host kernel"),
    SyscallProbe("delete_module", "delete_module(NULL, 0)", (0, 0),
                 "unload host kernel modules"),
    SyscallProbe("kexec_load", "kexec_load(0, 0, NULL, 0xffff0000)", (0, 0, 0, 0xFFFF0000),
                 "boot another kernel"),
    SyscallProbe("reboot", "reboot(0, 0, 0, NULL)", (0, 0, 0, 0), "reboot or halt"),
    SyscallProbe("swapon", "swapon(NULL, 0x80000000)", (0, 0x80000000),
                 "change the host's swap"),
    SyscallProbe("swapoff", "swapoff(NULL)", (0,), "change the host's swap"),
    SyscallProbe("acct", "acct((char *)1)", (1,), "process accounting for the host"),
    SyscallProbe("clock_settime", "clock_settime(100, NULL)", (100, 0),
                 "set the host's clock (time is not namespaced)"),
    SyscallProbe("syslog", "syslog(9999, NULL, 0)", (9999, 0, 0),
                 "read or clear the kernel's log"),
    SyscallProbe("iopl", "iopl(4)", (4,), "raw access to I/O ports"),
    SyscallProbe("ioperm", "ioperm(0, 0, 0)", (0, 0, 0), "raw access to I/O ports"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SyscallResult:
    name: str
    call: str
    grants: str
    number: int | None  # None: no such call on this architecture
    without_filter: int  # errno (0 = success; negative = killed by that signal)
    with_filter: int

    @property
    def verdict(self) -> str:
        """denied | allowed | unknown (the kernel refuses it anyway) | absent."""
        if self.number is None:
            return "absent"
        if self.with_filter != self.without_filter:
            return "denied"
        if self.without_filter == errno.EPERM:
            return "unknown"
        return "allowed"


@dataclass(frozen=True, slots=True)
class DeviceProbe:
    kind: str  # "c" or "b"
    major: int
    minor: int
    name: str


# Devices Docker allows (the first seven) and some it does not.
DEVICES: tuple[DeviceProbe, ...] = (
    DeviceProbe("c", 1, 3, "null"),
    DeviceProbe("c", 1, 5, "zero"),
    DeviceProbe("c", 1, 8, "random"),
    DeviceProbe("c", 1, 9, "urandom"),
    DeviceProbe("c", 5, 0, "tty"),
    DeviceProbe("c", 5, 2, "ptmx"),
    DeviceProbe("c", 10, 200, "net/tun"),
    DeviceProbe("c", 1, 1, "mem (physical memory)"),
    DeviceProbe("c", 1, 11, "kmsg (kernel log)"),
    DeviceProbe("c", 10, 229, "fuse"),
    DeviceProbe("b", 7, 0, "loop0"),
)


@dataclass(frozen=True, slots=True)
class DeviceResult:
    kind: str
    major: int
    minor: int
    name: str
    outside_errno: int  # open() from our own cgroup, the control
    open_errno: int  # open() from the container's cgroup; EPERM: the device cgroup refused
    mknod_errno: int  # mknod() from the container's cgroup (the 'm' permission)

    @property
    def verdict(self) -> str:
        """allowed | denied | unknown (refused outside the cgroup too)."""
        if self.open_errno != errno.EPERM:
            return "allowed"
        return "unknown" if self.outside_errno == errno.EPERM else "denied"


# ---------------------------------------------------------------- children


def _fork() -> int:
    threading = __import__("sys").modules.get("threading")
    if threading is not None and threading.active_count() != 1:
        raise ProbeError("cannot fork a probe while other threads run")
    return os.fork()


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _in_child(keep: set[int], w: int, body: Callable[[], object]) -> NoReturn:
    """Run `body` in a forked child and write its JSON result (or error) to `w`."""
    code = 0
    try:
        prctl.set_pdeathsig(signal.SIGKILL)
        prctl.set_dumpable(False)  # while visible in the container: no /proc/<pid>/exe
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        _close_all_but({*keep, w, 0, 1, 2})
        out: dict[str, Any] = {"result": body()}
    except BaseException as e:  # everything goes back to the parent as text
        out = {"error": _describe(e)}
        code = 1
    try:
        os.write(w, json.dumps(out).encode() + b"\n")
    finally:
        os._exit(code)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror if e.strerror.startswith(e.__class__.__name__) else str(e.strerror)
    return str(e) or type(e).__name__


def _collect(child: int, r: int, timeout: float) -> list[dict[str, Any]]:
    """Read JSON lines from `r` until EOF (the child and its children are gone)."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProbeError("the probe did not answer in time")
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(child)
    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
    if not lines:
        raise ProbeError("the probe died without an answer")
    return lines


def _reap(child: int, timeout: float = 5.0) -> None:
    """Reap `child`, but do not wait forever: a child that joined the container's
    cgroup dies only once that cgroup is thawed, if the container froze it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(child, os.WNOHANG)[0] == child:
                return
        except ChildProcessError:
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _run_child(body: Callable[[], object], keep: set[int], timeout: float = _TIMEOUT) -> object:
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = _fork()
    if pid == 0:
        os.close(r)
        _in_child(keep, w, body)
    os.close(w)
    first = _collect(pid, r, timeout)[0]
    if "error" in first:
        raise ProbeError(first["error"])
    return first["result"]


# ---------------------------------------------------------------- seccomp


def seccomp_programs(pid: int) -> list[bytes]:
    """The seccomp filters of `pid`, oldest first, copied out of the kernel by a
    child (if it dies, the kernel detaches it and the process resumes)."""
    from portique.linux.ptrace import seccomp_filters

    def body() -> list[str]:
        return [p.hex() for p in seccomp_filters(pid)]

    hexes = _run_child(body, set(), timeout=10.0)
    assert isinstance(hexes, list)
    return [bytes.fromhex(h) for h in hexes]


def programs_from_spec(spec: LinuxSeccomp) -> list[bytes]:
    """The filter compiled from a config.json's linux.seccomp (when the kernel's
    copy cannot be read)."""
    from portique.runtime.seccomp_cache import export_program

    return [export_program(spec)]


def _syscall_number(name: str) -> int | None:
    import seccomp

    try:
        nr = int(seccomp.resolve_syscall(seccomp.Arch.NATIVE, name))
    except (ValueError, RuntimeError):
        return None
    return nr if nr >= 0 else None


def _try_each(numbers: list[int | None]) -> list[int]:
    """Each call in a child of its own: a KILL action or a surprise success
    touches only that child."""
    out = []
    for probe, nr in zip(PROBES, numbers, strict=True):
        if nr is None:
            out.append(errno.ENOSYS)
            continue
        child = os.fork()
        if child == 0:
            os._exit(syscall_errno(nr, *probe.args) & 0xFF)
        _, status = os.waitpid(child, 0)
        out.append(os.waitstatus_to_exitcode(status))
    return out


def _open_namespaces(pid: int, start_time: int | None) -> list[tuple[str, int]]:
    fds: list[tuple[str, int]] = []
    try:
        for name in _JOIN_ORDER:
            theirs = os.stat(f"/proc/{pid}/ns/{name}")
            mine = os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
                continue
            fds.append((name, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)))
    except OSError:
        for _, fd in fds:
            os.close(fd)
        raise
    if not procfs.is_alive(pid, start_time):
        for _, fd in fds:
            os.close(fd)
        raise ProbeError(f"process {pid} is gone")
    return fds


def probe_syscalls(
    pid: int, programs: list[bytes], *, start_time: int | None = None
) -> list[SyscallResult]:
    """Each of PROBES without and with `programs`, in the namespaces of `pid`."""
    numbers = [_syscall_number(p.name) for p in PROBES]
    fds = _open_namespaces(pid, start_time)
    r, w = os.pipe2(os.O_CLOEXEC)

    def helper() -> None:
        for name, fd in fds:
            ns.setns(fd, _CLONE_FLAGS[name])
            if name == "user":
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            os.close(fd)
        for mode in ("without", "with"):
            child = os.fork()
            if child == 0:
                try:
                    if mode == "with":
                        for prog in programs:
                            load_filter(prog)
                    line = json.dumps({"mode": mode, "codes": _try_each(numbers)})
                except BaseException as e:
                    line = json.dumps({"mode": mode, "error": _describe(e)})
                os.write(w, line.encode() + b"\n")
                os._exit(0)
            os.waitpid(child, 0)

    try:
        child = _fork()
        if child == 0:
            os.close(r)
            _in_child({fd for _, fd in fds}, w, helper)
    finally:
        os.close(w)
        for _, fd in fds:
            os.close(fd)
    lines = _collect(child, r, _TIMEOUT)
    codes: dict[str, list[int]] = {}
    for line in lines:
        if "error" in line:
            raise ProbeError(line["error"])
        if "mode" in line:
            codes[line["mode"]] = line["codes"]
    if set(codes) != {"without", "with"}:
        raise ProbeError("the probe died before it could answer")
    return [
        SyscallResult(p.name, p.call, p.grants, nr, a, b)
        for p, nr, a, b in zip(PROBES, numbers, codes["without"], codes["with"], strict=True)
    ]


# ---------------------------------------------------------------- devices


def probe_devices(
    procs_files: list[str], extra: tuple[DeviceProbe, ...] = ()
) -> list[DeviceResult]:
    """Open each of DEVICES (+ `extra`) from inside the cgroups whose
    cgroup.procs files are `procs_files` (the container's device cgroup)."""
    from portique.linux.mount import MS_PRIVATE, MS_REC, mount

    devices = DEVICES + extra

    def try_open(path: str) -> int:
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC))
        except OSError as e:
            return e.errno or errno.EIO
        return 0

    def try_mknod(path: str, d: DeviceProbe) -> int:
        kind = stat.S_IFCHR if d.kind == "c" else stat.S_IFBLK
        try:
            os.mknod(path, kind | 0o600, os.makedev(d.major, d.minor))
        except OSError as e:
            return e.errno or errno.EIO
        return 0

    def body() -> list[list[int]]:
        # A private mount namespace and tmpfs: the nodes exist for this process only.
        ns.unshare(ns.CLONE_NEWNS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("portique-probe", "/tmp", "tmpfs", 0, "size=64k,mode=700")
        for i, d in enumerate(devices):
            if err := try_mknod(f"/tmp/{i}", d):
                raise OSError(err, f"mknod {d.kind} {d.major}:{d.minor}: {os.strerror(err)}")
        outside = [try_open(f"/tmp/{i}") for i in range(len(devices))]
        for procs in procs_files:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        inside = [try_open(f"/tmp/{i}") for i in range(len(devices))]
        made = [try_mknod(f"/tmp/m{i}", d) for i, d in enumerate(devices)]
        return [list(t) for t in zip(outside, inside, made, strict=True)]

    raw = _run_child(body, set())
    assert isinstance(raw, list)
    return [
        DeviceResult(d.kind, d.major, d.minor, d.name, int(o), int(i), int(mk))
        for d, (o, i, mk) in zip(devices, raw, strict=True)
    ]
