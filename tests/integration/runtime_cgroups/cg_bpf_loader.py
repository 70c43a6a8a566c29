"""A bpf(2) loader for cgroup device programs, for the tests.

src/ keeps ctypes inside portique.linux; this is the reference the runtime's
`portique.linux.bpf.attach_device_filter(cgroup_fd, insns)` is meant to match
(V2Manager takes any object with that method). x86_64 syscall number.
"""

from __future__ import annotations

import ctypes
import os
import struct

SYS_BPF = 321
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
ATTR_SIZE = 128

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr.ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
    ret = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(cmd), buf, ctypes.c_uint(ATTR_SIZE))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return int(ret)


def _attached(cgroup_fd: int) -> list[int]:
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(
        struct.pack("<IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64),
        ATTR_SIZE,
    )
    ret = _libc.syscall(
        ctypes.c_long(SYS_BPF), ctypes.c_long(BPF_PROG_QUERY), attr, ctypes.c_uint(ATTR_SIZE)
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf(PROG_QUERY): {os.strerror(err)}")
    (count,) = struct.unpack_from("<I", attr.raw, 24)
    return list(ids[:count])


class BpfLoader:
    """Load the program, attach it (multi), then detach what was there before."""

    def attach_device_filter(self, cgroup_fd: int, insns: bytes) -> None:
        old = _attached(cgroup_fd)
        code = ctypes.create_string_buffer(insns, len(insns))
        license_ = ctypes.create_string_buffer(b"Apache-2.0")
        log = ctypes.create_string_buffer(65536)
        attr = struct.pack(
            "<IIQQIIQ",
            BPF_PROG_TYPE_CGROUP_DEVICE,
            len(insns) // 8,
            ctypes.addressof(code),
            ctypes.addressof(license_),
            1,
            len(log),
            ctypes.addressof(log),
        )
        try:
            prog = _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')}") from None
        try:
            _bpf(
                BPF_PROG_ATTACH,
                struct.pack("<IIII", cgroup_fd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI),
            )
        finally:
            os.close(prog)
        for prog_id in old:
            fd = _bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", prog_id))
            try:
                _bpf(BPF_PROG_DETACH, struct.pack("<III", cgroup_fd, fd, BPF_CGROUP_DEVICE))
            finally:
                os.close(fd)

    def attached(self, cgroup_fd: int) -> list[int]:
        return _attached(cgroup_fd)
