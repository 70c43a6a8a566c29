"""bpf(2) for cgroup v2 device filters.

On cgroup v2 there is no devices.allow file: the kernel asks a
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup. The program
itself is compiled elsewhere (runtime/cgroups/devices_bpf.py); this module
only loads it, attaches it, and detaches the programs it replaces. It is
attached with BPF_F_ALLOW_MULTI before the old ones are detached, so there is
never a moment without a filter.
"""

from __future__ import annotations

import ctypes
import os
import struct

from portique.linux._libc import libc

# bpf(2) has no libc wrapper: call it through syscall(2).
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128  # bigger than every union member we use; the rest is zero
_MAX_QUERY = 64

libc.syscall.restype = ctypes.c_long


def _sys_bpf() -> int:
    # os.uname() is what platform.machine() reads, without importing platform
    # (and re behind it) on a cgroup v2 host's start path.
    machine = os.uname().machine
    try:
        return _SYS_BPF[machine]
    except KeyError:
        raise OSError(38, f"bpf: unknown syscall number on {machine}") from None


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    while True:
        ret = libc.syscall(
            ctypes.c_long(_sys_bpf()), ctypes.c_long(cmd), attr, ctypes.c_uint(_ATTR_SIZE)
        )
        if ret >= 0:
            return int(ret)
        err = ctypes.get_errno()
        if err != 4:  # EINTR
            raise OSError(err, f"bpf({what}): {os.strerror(err)}")


def _attr(packed: bytes) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(packed.ljust(_ATTR_SIZE, b"\0"), _ATTR_SIZE)


def attached(cgroup_fd: int) -> list[int]:
    """IDs of the device programs attached to the cgroup itself."""
    ids = (ctypes.c_uint32 * _MAX_QUERY)()
    attr = _attr(
        struct.pack(
            "<IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), _MAX_QUERY
        )
    )
    _bpf(BPF_PROG_QUERY, attr, "PROG_QUERY")
    (count,) = struct.unpack_from("<I", attr.raw, 24)
    return list(ids[: min(count, _MAX_QUERY)])


def attach_device_filter(cgroup_fd: int, insns: bytes) -> None:
    """Load `insns` as a device program and make it the cgroup's only one."""
    before = attached(cgroup_fd)
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(1 << 16)
    load = _attr(
        struct.pack(
            "<IIQQIIQ",
            BPF_PROG_TYPE_CGROUP_DEVICE,
            len(insns) // 8,
            ctypes.addressof(code),
            ctypes.addressof(license_),
            1,  # log level: the verifier says why it refused
            len(log),
            ctypes.addressof(log),
        )
    )
    try:
        prog = _bpf(BPF_PROG_LOAD, load, "PROG_LOAD")
    except OSError as exc:
        why = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(exc.errno, f"{exc.strerror}: {why[-1] if why else ''}") from None
    try:
        _bpf(
            BPF_PROG_ATTACH,
            _attr(struct.pack("<IIII", cgroup_fd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)),
            "PROG_ATTACH",
        )
    finally:
        os.close(prog)
    for prog_id in before:
        fd = _bpf(BPF_PROG_GET_FD_BY_ID, _attr(struct.pack("<I", prog_id)), "PROG_GET_FD_BY_ID")
        try:
            _bpf(
                BPF_PROG_DETACH,
                _attr(struct.pack("<III", cgroup_fd, fd, BPF_CGROUP_DEVICE)),
                "PROG_DETACH",
            )
        finally:
            os.close(fd)
