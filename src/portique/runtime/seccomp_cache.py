"""Compiled seccomp filters cached by the profile's digest, as crun does.

Compiling `linux.seccomp` through libseccomp costs every start ~6 ms of CPU
(the binding's import, building the rule tree, and `seccomp_load`'s own BPF
generation) for a profile that is almost always the same one (Docker's
default, containerd's, ours). `compiled(spec, cache_dir)` returns a filter
that loads a classic-BPF program with prctl(PR_SET_SECCOMP) and takes that
program from `cache_dir/<key>.bpf` when a valid entry exists; otherwise it
compiles with libseccomp, exports the BPF, and writes the entry atomically
(temp file + rename, no fsync: the cache lives under the runtime's state root,
a tmpfs, and is only ever a copy of what compiling gives).

The key is the SHA-256 of the typed profile (its canonical repr), this
module's format version, the machine and kernel (libseccomp adapts actions to
what the running kernel supports), and the installed libseccomp and
binding (their resolved file names, sizes and mtimes), so an upgrade of
either misses the old entries instead of loading what an older compiler made.

A cache file is hostile input too, and it must never weaken a filter:
- the directory must be a real directory (not a symlink) owned by us and
  writable by nobody else, the entry a regular file opened with O_NOFOLLOW,
  owned by us, not group/world-writable, and at most the header plus
  BPF_MAXINSNS instructions;
- the entry names its own key (a file renamed under another key is refused),
  its program length and the program's SHA-256, which must match;
- the program must be whole instructions and start as libseccomp's do, by
  loading `seccomp_data.arch`.
Anything else is a miss: the profile is compiled again and the entry
rewritten. Profiles with flags (TSYNC, LOG, SPEC_ALLOW) need seccomp(2)'s
flags, which prctl cannot pass: they are compiled every time, as before.
"""

from __future__ import annotations

import os
import stat
import struct
import sys

from portique.oci.value import value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Final

    from _typeshed import StrPath

    from portique.oci.seccomp import LinuxSeccomp
    from portique.runtime.process import Loadable

FORMAT: Final = 1
MAGIC: Final = b"portique seccomp bpf\n\x00"  # 22 bytes
_HEAD: Final = struct.Struct("<22s32s32sI")  # magic, key, sha256(program), program length
_INSN: Final = 8  # sizeof(struct sock_filter)
MAX_INSNS: Final = 4096  # BPF_MAXINSNS: the kernel refuses longer programs
MAX_FILE: Final = _HEAD.size + MAX_INSNS * _INSN
MAX_ENTRIES: Final = (
    256  # profiles in use on one host: Docker's default per capability set, a few more
)
# The first instruction of a libseccomp filter: BPF_LD|BPF_W|BPF_ABS of
# offsetof(struct seccomp_data, arch) == 4.
_LOAD_ARCH: Final = struct.pack("<HBBI", 0x20, 0, 0, 4)


@value
class RawFilter:
    """A classic-BPF seccomp program; `load()` installs it in the calling process."""

    program: bytes

    def load(self) -> None:
        from portique.linux.seccomp import load_filter

        load_filter(self.program)


def _sha256(data: bytes) -> bytes:
    """SHA-256 without `hashlib`, whose OpenSSL load costs a start 3-15 ms."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python 3.12+ merged it into _sha2
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    digest: bytes = sha256(data).digest()
    return digest


def _library_identity() -> str:
    """Which libseccomp and binding compile here, without importing the binding."""
    parts: list[str] = []
    multiarch = getattr(sys.implementation, "_multiarch", "")
    candidates = [f"/usr/lib/{multiarch}/libseccomp.so.2", "/usr/lib/libseccomp.so.2"]
    from importlib.machinery import PathFinder

    found = PathFinder.find_spec("seccomp")
    if found is not None and found.origin:
        candidates.append(found.origin)
    for path in candidates:
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except OSError:
            continue
        parts.append(f"{real}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def cache_key(spec: LinuxSeccomp) -> bytes:
    # The kernel too: libseccomp asks it which actions it supports (an older
    # kernel gets KILL_THREAD for KILL_PROCESS), and a root may outlive a boot.
    u = os.uname()
    head = f"{FORMAT}\n{u.machine}\n{u.release}\n{u.version}\n{_library_identity()}\n"
    return _sha256(head.encode() + repr(spec).encode())


def encode_entry(key: bytes, program: bytes) -> bytes:
    return _HEAD.pack(MAGIC, key, _sha256(program), len(program)) + program


def decode_entry(data: bytes, key: bytes) -> bytes | None:
    """The program of a cache entry for `key`, or None when anything is off."""
    if len(data) < _HEAD.size or len(data) > MAX_FILE:
        return None
    magic, got_key, digest, length = _HEAD.unpack_from(data)
    program = data[_HEAD.size :]
    if magic != MAGIC or got_key != key or length != len(program):
        return None
    if not program or length % _INSN or length > MAX_INSNS * _INSN:
        return None
    if not program.startswith(_LOAD_ARCH):
        return None
    if _sha256(program) != digest:
        return None
    return program


def _safe_dir(directory: StrPath) -> bool:
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def read_entry(directory: StrPath, key: bytes) -> bytes | None:
    if not _safe_dir(directory):
        return None
    path = os.path.join(directory, f"{key.hex()}.bpf")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != os.geteuid()
            or st.st_mode & 0o022
            or st.st_size > MAX_FILE
        ):
            return None
        data = os.read(fd, MAX_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return decode_entry(data, key)


def write_entry(directory: StrPath, key: bytes, program: bytes) -> None:
    """Best effort: a cache that cannot be written costs the next start a compile."""
    from portique.fileio import atomic_write

    try:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
        if not _safe_dir(directory):
            return
        if len(os.listdir(directory)) >= MAX_ENTRIES:
            return  # bounded: callers choosing ever new profiles compile each time
        entry = os.path.join(directory, f"{key.hex()}.bpf")
        atomic_write(entry, encode_entry(key, program), 0o600, fsync=False)
    except OSError:
        pass


def export_program(spec: LinuxSeccomp) -> bytes:
    """Compile `spec` with libseccomp and return its BPF program."""
    from portique.runtime.seccomp import build_filter

    flt = build_filter(spec)
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    with open(fd, "w+b") as f:
        flt.export_bpf(f)
        f.flush()
        f.seek(0)
        return f.read(MAX_FILE + 1)


def compiled(spec: LinuxSeccomp, cache_dir: StrPath | None) -> Loadable:
    """The filter for `spec`, from the cache in `cache_dir` when it has a valid entry."""
    if cache_dir is None or spec.flags:
        from portique.runtime.seccomp import build_filter

        return build_filter(spec)
    key = cache_key(spec)
    program = read_entry(cache_dir, key)
    if program is None:
        program = export_program(spec)
        if len(program) > MAX_INSNS * _INSN or not program.startswith(_LOAD_ARCH):
            # Not something this cache would accept back: load it as libseccomp does.
            from portique.runtime.seccomp import build_filter

            return build_filter(spec)
        write_entry(cache_dir, key, program)
    # Imported now: load() runs in the init after pivot_root, where the
    # container's root has no Python library to import from.
    import portique.linux.seccomp  # noqa: F401

    return RawFilter(program)


__all__ = ["RawFilter", "cache_key", "compiled", "decode_entry", "encode_entry", "read_entry"]
