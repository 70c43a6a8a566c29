"""portique's default seccomp profile, as an OCI `linux.seccomp` object.

An allow-list: anything not named returns EPERM. It follows the same idea as
Docker's default profile (ordinary programs run; interfaces that are not
namespaced or that widen the kernel's attack surface do not), but the list is
our own, grouped by purpose below.

Always denied (unless a capability below re-grants them):
- namespaces and mounts: unshare, setns, mount, umount2, pivot_root, the new
  mount API (fsopen, fsmount, move_mount, open_tree, ...), clone with any
  CLONE_NEW* flag; clone3 answers ENOSYS (its flags sit in a struct that
  seccomp cannot read, so libc falls back to clone, which is checked);
- the kernel itself: init_module, finit_module, delete_module, kexec_load,
  kexec_file_load, reboot, swapon, swapoff, acct, iopl, ioperm, syslog;
- unnamespaced keyrings: keyctl, add_key, request_key;
- bpf, perf_event_open, userfaultfd, io_uring_* (large attack surface; Docker
  denies io_uring too), open_by_handle_at (the "shocker" escape), quotactl,
  lookup_dcookie, the clock setters, personality other than the plain ones,
  obsolete calls (uselib, ustat, sysfs, _sysctl, vm86, nfsservctl, ...).

ptrace, process_vm_readv and process_vm_writev are allowed: since Linux 4.8 a
tracer can no longer use ptrace to step around a seccomp filter, and portique
needs kernels far newer than that (cgroup2 freezer, pidfd), so strace and gdb
work in a container as they do under Docker on such kernels.

`default_profile(caps)` adds what the granted capabilities make legitimate
(CAP_SYS_ADMIN: mounts and namespaces; CAP_SYS_TIME: the clock setters; ...).
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

__all__ = ["DOCKER_DEFAULT_CAPS", "default_profile"]

# What Docker grants by default (in Docker's order); used when the caller does
# not say. The engine's and the builder's default capability set too.
DOCKER_DEFAULT_CAPS: Final[tuple[str, ...]] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

_FILES: Final = """
    access faccessat faccessat2 open openat openat2 creat close close_range read readv
    pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2 lseek _llseek
    stat lstat fstat newfstatat statx stat64 lstat64 fstat64 fstatat64 statfs fstatfs
    statfs64 fstatfs64 truncate ftruncate truncate64 ftruncate64 fallocate fadvise64
    fadvise64_64 arm_fadvise64_64 readahead fsync fdatasync sync syncfs sync_file_range
    sync_file_range2 arm_sync_file_range
    mkdir mkdirat rmdir rename renameat renameat2 link linkat unlink unlinkat symlink
    symlinkat readlink readlinkat mknod mknodat chmod fchmod fchmodat fchmodat2 chown
    fchown lchown fchownat chown32 fchown32 lchown32 umask utime utimes utimensat
    futimesat utimensat_time64 chdir fchdir getcwd readdir getdents getdents64 flock fcntl
    fcntl64 dup dup2 dup3 pipe pipe2 ioctl sendfile sendfile64 splice tee vmsplice
    copy_file_range getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
    listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
    getxattrat setxattrat listxattrat removexattrat name_to_handle_at cachestat
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    memfd_create memfd_secret
"""
_MEMORY: Final = """
    brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 munlock
    mlockall munlockall remap_file_pages membarrier pkey_alloc pkey_free pkey_mprotect
    map_shadow_stack mseal
"""
_PROCESSES: Final = """
    execve execveat exit exit_group fork vfork wait4 waitid waitpid kill tkill tgkill
    getpid getppid gettid getpgid setpgid getpgrp getsid setsid getpriority
    setpriority getrlimit setrlimit ugetrlimit prlimit64 getrusage times
    capget capset prctl arch_prctl seccomp set_tid_address set_robust_list
    get_robust_list rseq restart_syscall get_thread_area set_thread_area
    set_tls get_tls cacheflush breakpoint riscv_flush_icache riscv_hwprobe
    sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
    sched_getparam sched_setparam sched_getscheduler sched_setscheduler
    sched_get_priority_max sched_get_priority_min sched_rr_get_interval
    sched_rr_get_interval_time64 ioprio_get ioprio_set getcpu
    pidfd_open pidfd_send_signal pidfd_getfd process_mrelease
    ptrace process_vm_readv process_vm_writev
    landlock_create_ruleset landlock_add_rule landlock_restrict_self
    lsm_get_self_attr lsm_set_self_attr lsm_list_modules
    sethostname setdomainname uname olduname sysinfo nice
"""
_IDENTITY: Final = """
    getuid geteuid getgid getegid getresuid getresgid getgroups setuid setgid setreuid
    setregid setresuid setresgid setgroups setfsuid setfsgid
    getuid32 geteuid32 getgid32 getegid32 getresuid32 getresgid32 getgroups32 setuid32
    setgid32 setreuid32 setregid32 setresuid32 setresgid32 setgroups32 setfsuid32
    setfsgid32
"""
_SIGNALS_TIME: Final = """
    rt_sigaction rt_sigprocmask rt_sigpending rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo rt_sigreturn sigreturn
    sigaction sigprocmask sigpending sigsuspend sigaltstack signal signalfd signalfd4 pause
    alarm nanosleep clock_nanosleep clock_nanosleep_time64 clock_gettime
    clock_gettime64 clock_getres clock_getres_time64 gettimeofday time getitimer
    setitimer timer_create timer_delete timer_getoverrun timer_gettime
    timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64
"""
_WAITING: Final = """
    futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue
    poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64
    epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2
    eventfd eventfd2 io_setup io_destroy io_submit io_cancel io_getevents
    io_pgetevents io_pgetevents_time64 getrandom
"""
_IPC_NET: Final = """
    socket socketpair socketcall bind connect listen accept accept4 getsockname
    getpeername getsockopt setsockopt shutdown send sendto sendmsg sendmmsg recv
    recvfrom recvmsg recvmmsg recvmmsg_time64
    ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl
    shmget shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64
    mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr
"""

# Syscalls a capability makes legitimate, added by default_profile(caps).
_BY_CAP: Final[dict[str, str]] = {
    "CAP_SYS_ADMIN": """
        mount umount umount2 unshare setns clone clone3 pivot_root fsopen fsconfig
        fsmount fspick move_mount open_tree mount_setattr quotactl quotactl_fd
        lookup_dcookie fanotify_init bpf perf_event_open listmount statmount
    """,
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp process_madvise userfaultfd",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": """
        settimeofday stime clock_settime clock_settime64 adjtimex clock_adjtime
        clock_adjtime64
    """,
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy set_mempolicy set_mempolicy_home_node mbind migrate_pages move_pages",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
}

# Every CLONE_NEW* flag: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET (CLONE_NEWTIME, 0x80, overlaps CSIGNAL in clone(2) and is unshare-only).
CLONE_NEW_MASK: Final = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)

# personality(2) values a normal program uses: PER_LINUX, PER_LINUX32,
# UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query).
_PERSONALITIES: Final = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)

_ARCHES: Final = {
    # i386 binaries run on x86_64; the x32 ABI (off in Debian's kernels unless
    # booted with syscall.x32=y) is left out: its calls meet the bad-arch kill,
    # and each extra architecture costs ~5 ms of filter generation per start.
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "armv7l": ["SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def _names(*groups: str) -> list[str]:
    seen: dict[str, None] = {}
    for g in groups:
        for name in g.split():
            seen.setdefault(name, None)
    return list(seen)


def _norm_cap(cap: str) -> str:
    cap = cap.upper()
    return cap if cap.startswith("CAP_") else f"CAP_{cap}"


def default_profile(caps: Iterable[str] | None = None) -> dict[str, object]:
    """The profile as a `linux.seccomp` JSON object (a fresh dict each call).

    `caps`: the container's bounding capabilities ("CAP_SYS_ADMIN" or
    "SYS_ADMIN"); None means Docker's default set.
    """
    granted = frozenset(DOCKER_DEFAULT_CAPS if caps is None else (_norm_cap(c) for c in caps))
    allowed = _names(_FILES, _MEMORY, _PROCESSES, _IDENTITY, _SIGNALS_TIME, _WAITING, _IPC_NET)
    syscalls: list[dict[str, object]] = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    syscalls.extend(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}],
        }
        for p in _PERSONALITIES
    )
    extra = _names(*(_BY_CAP[c] for c in sorted(granted) if c in _BY_CAP))
    if extra:
        syscalls.append({"names": extra, "action": "SCMP_ACT_ALLOW"})
    if "CAP_SYS_ADMIN" not in granted:
        # fork and threads, but no new namespaces. On s390 the flags are the
        # second argument; everywhere else the first.
        index = 1 if os.uname().machine == "s390x" else 0
        syscalls.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {
                        "index": index,
                        "value": CLONE_NEW_MASK,
                        "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            }
        )
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": list(_ARCHES.get(os.uname().machine, [])),
        "syscalls": syscalls,
    }
