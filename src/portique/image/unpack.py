"""Unpack one layer tar into a snapshot directory, safely, fast.

The tar is hostile. Every entry is created relative to a directory file
descriptor that was itself opened component by component with
O_NOFOLLOW|O_DIRECTORY from the snapshot's root, so no entry can write or link
outside the snapshot:

- names are cleaned: a leading "/" and "." components are dropped (Docker does
  the same: layer paths are relative to the root whatever they say), and any
  ".." component is refused outright (no legitimate layer needs one);
- a parent that is a symlink (or a file) makes the entry fail: we never follow
  a symlink while creating entries; symlink targets are stored as they are and
  only ever resolved inside the container;
- hard links must name an earlier entry of this layer, reached the same way;
- the final component is created with O_CREAT|O_EXCL / mkdirat / symlinkat /
  mknodat, which never follow a symlink either;
- xattrs are kept only in the user.* namespace and security.capability:
  trusted.overlay.* from a layer could redirect overlayfs lookups.

OCI whiteouts become overlayfs ones: `.wh.NAME` -> a 0:0 character device
NAME, `.wh..wh..opq` -> xattr trusted.overlay.opaque="y" on its directory.

Compression is sniffed from magic bytes (gzip, zstd, else plain tar), never
taken from the media type alone. Decompression and hashing of the
uncompressed stream (the layer's diff_id) run in a helper thread, so they
overlap with the file system work of the tar reader.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Final, Protocol

from portique.errors import InvalidArgument, PortiqueError
from portique.image.snapshots import remove_at

GZIP_MAGIC: Final = b"\x1f\x8b"
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_OTHER_MAGIC: Final = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}

MAX_NAME: Final = 4096  # bytes in a path, as PATH_MAX
MAX_XATTRS: Final = 128  # per entry
MAX_XATTR_VALUE: Final = 64 << 10
MAX_ENTRIES: Final = 4_000_000
_BLOCK: Final = 1 << 20
_FD_CACHE: Final = 256

WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
OPAQUE_XATTR: Final = "trusted.overlay.opaque"

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


class InvalidLayer(InvalidArgument):
    """A layer tar that is malformed or tries to escape its snapshot."""


@dataclass(frozen=True, slots=True)
class UnpackResult:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of regular file content
    entries: int
    compression: Compression


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def sniff(head: bytes) -> Compression:
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise InvalidLayer(f"unsupported layer compression {name}")
    return Compression.NONE


def decompressor(src: BinaryIO, kind: Compression) -> _Readable:
    """A reader of the uncompressed bytes of `src` (positioned at its start)."""
    if kind is Compression.GZIP:
        try:
            from isal import igzip  # ISA-L inflate: several times faster than zlib

            return igzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover - isal is a dependency
            import gzip

            return gzip.GzipFile(fileobj=src, mode="rb")
    if kind is Compression.ZSTD:
        import zstandard

        reader: _Readable = zstandard.ZstdDecompressor().stream_reader(
            src, read_size=_BLOCK, read_across_frames=True, closefd=False
        )
        return reader
    return src


class _Prefetch:
    """Decompress and hash in a background thread; hand the blocks to the tar reader.

    zlib/ISA-L, zstd and sha256 all release the GIL on large buffers, so this
    thread runs beside the tar reader that creates files.
    """

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=8)
        self._hash = hashlib.sha256()
        self.size = 0
        self._buf = memoryview(b"")
        self._eof = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unpack-inflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                block = self._raw.read(_BLOCK)
                self._hash.update(block)
                self.size += len(block)
                self._put(block)
                if not block:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next_block(self) -> bool:
        if self._eof:
            return False
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item:
            self._eof = True
            return False
        self._buf = memoryview(item)
        return True

    def at_eof(self) -> bool:
        return not self._buf and not self._next_block()

    def read_exact(self, n: int) -> bytes:
        if len(self._buf) >= n:
            out = bytes(self._buf[:n])
            self._buf = self._buf[n:]
            return out
        return b"".join(bytes(c) for c in self.chunks(n))

    def chunks(self, n: int) -> Iterator[memoryview]:
        """Exactly `n` bytes as views into the decompressed blocks (no copies)."""
        while n > 0:
            if not self._buf and not self._next_block():
                raise InvalidLayer("invalid layer tar: unexpected end of data")
            take = self._buf[:n]
            self._buf = self._buf[len(take) :]
            n -= len(take)
            yield take

    def skip(self, n: int) -> None:
        for _ in self.chunks(n):
            pass

    def drain(self) -> str:
        """Consume the rest of the stream (tar padding); return the diff_id."""
        while self._next_block():
            self._buf = memoryview(b"")
        self._thread.join()
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=10)


# ---- the tar format (POSIX ustar + pax, GNU long names), read as a stream ---------
#
# Our own reader rather than tarfile: it parses a header in a few microseconds
# (tarfile's per-member cost was a third of an unpack), bounds what tarfile
# would read into memory unchecked (pax and long-name bodies), hands file data
# over as views of the decompressed blocks, and refuses sparse files.

REGTYPE: Final = b"0"
AREGTYPE: Final = b"\0"
LNKTYPE: Final = b"1"
SYMTYPE: Final = b"2"
CHRTYPE: Final = b"3"
BLKTYPE: Final = b"4"
DIRTYPE: Final = b"5"
FIFOTYPE: Final = b"6"
CONTTYPE: Final = b"7"
_FILE_TYPES: Final = frozenset({REGTYPE, AREGTYPE, CONTTYPE})
_HEADER_ONLY: Final = frozenset({LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE})
_PAX_TYPES: Final = frozenset({b"x", b"X"})  # X: Solaris' name for the same
_ZERO_BLOCK: Final = bytes(512)
MAX_META: Final = 1 << 20  # bytes in one pax / GNU long-name body


@dataclass(slots=True)
class TarEntry:
    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes]  # every SCHILY.xattr.* record, unfiltered


def _bad(why: str) -> InvalidLayer:
    return InvalidLayer(f"invalid layer tar: {why}")


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256, two's complement
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    try:  # the common form: octal digits, then NULs or spaces
        return int(field.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        pass
    digits = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise _bad(f"bad number field {bytes(field)!r}") from None


def _checksum_ok(h: bytes) -> bool:
    want = _number(h[148:156])
    unsigned = sum(h) - sum(h[148:156]) + 256  # the field counts as 8 spaces
    if want == unsigned:
        return True
    # Some old tars summed signed chars.
    return want == unsigned - 256 * sum(1 for b in h if b > 127) + 256 * sum(
        1 for b in h[148:156] if b > 127
    )


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:space]) if space > pos else -1
        except ValueError:
            length = -1
        end = pos + length
        if length <= space - pos or end > len(data) or data[end - 1] != 0x0A:
            raise _bad("malformed pax record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise _bad("malformed pax record")
        out[key] = value
        pos = end
    return out


def _pax_time_ns(value: bytes) -> int:
    whole, _, frac = value.partition(b".")
    try:
        secs = int(whole)
        ns = int((frac + b"000000000")[:9]) if frac else 0
    except ValueError:
        raise _bad(f"bad pax time {value[:40]!r}") from None
    return secs * 1_000_000_000 + (-ns if whole.startswith(b"-") else ns)


class TarReader:
    """The entries of an uncompressed tar stream; read a file's data with `data()`."""

    def __init__(self, stream: _Prefetch) -> None:
        self._stream = stream
        self._global: dict[bytes, bytes] = {}
        self._left = 0  # data (and padding) of the current entry not yet consumed

    def data(self, entry: TarEntry) -> Iterator[memoryview]:
        for chunk in self._stream.chunks(entry.size):
            self._left -= len(chunk)
            yield chunk

    def _body(self, size: int) -> bytes:
        if size > MAX_META:
            raise _bad(f"header extension of {size} bytes is too large")
        data = self._stream.read_exact(size)
        self._stream.skip(-size % 512)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            self._stream.skip(self._left)
            self._left = 0
            if self._stream.at_eof():
                return  # no end-of-archive blocks: tolerated, as tar(1) does
            h = self._stream.read_exact(512)
            if h == _ZERO_BLOCK:
                return
            if not _checksum_ok(h):
                raise _bad("header checksum mismatch")
            typ = h[156:157]
            size = _number(h[124:136])
            if size < 0:
                raise _bad("negative size")
            if typ in _PAX_TYPES:
                pax.update(_pax_records(self._body(size)))
                continue
            if typ == b"g":
                self._global.update(_pax_records(self._body(size)))
                continue
            if typ in (b"L", b"K"):
                value = self._body(size).split(b"\0", 1)[0]
                if typ == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            rec = {**self._global, **pax} if self._global else pax
            name = rec.get(b"path") or long_name or h[0:100].split(b"\0", 1)[0]
            if h[257:263] == b"ustar\0" and h[345] and b"path" not in rec and long_name is None:
                name = h[345:500].split(b"\0", 1)[0] + b"/" + name  # POSIX prefix field
            link = rec.get(b"linkpath") or long_link or h[157:257].split(b"\0", 1)[0]
            if typ == b"S" or any(k.startswith(b"GNU.sparse.") for k in rec):
                raise InvalidLayer(
                    f"invalid layer entry {os.fsdecode(name)!r}: sparse files are not supported"
                )
            try:
                size = int(rec[b"size"]) if b"size" in rec else size
                uid = int(rec[b"uid"]) if b"uid" in rec else _number(h[108:116])
                gid = int(rec[b"gid"]) if b"gid" in rec else _number(h[116:124])
            except ValueError:
                raise _bad("bad pax number") from None
            if size < 0:
                raise _bad("negative size")
            mtime_ns = (
                _pax_time_ns(rec[b"mtime"]) if b"mtime" in rec else _number(h[136:148]) * 10**9
            )
            xattrs = {
                k[13:].decode("utf-8", "surrogateescape"): v
                for k, v in rec.items()
                if k.startswith(b"SCHILY.xattr.")
            }
            if typ == AREGTYPE and name.endswith(b"/"):
                typ = DIRTYPE  # pre-POSIX tars mark directories by a trailing slash
            if typ in _HEADER_ONLY:
                size = 0  # as Go's archive/tar: these types carry no data
            pax = {}
            long_name = long_link = None
            self._left = size + (-size % 512)
            yield TarEntry(
                name=name.decode("utf-8", "surrogateescape"),
                type=typ,
                mode=_number(h[100:108]),
                uid=uid,
                gid=gid,
                size=size,
                mtime_ns=mtime_ns,
                linkname=link.decode("utf-8", "surrogateescape"),
                devmajor=_number(h[329:337]),
                devminor=_number(h[337:345]),
                xattrs=xattrs,
            )


def clean_name(name: str) -> tuple[str, ...]:
    """Split a member name into safe components; raise InvalidLayer on '..'."""
    # (A str of n chars encodes to at most 4n bytes: most names skip the encode.)
    if len(name) * 4 > MAX_NAME and len(os.fsencode(name)) > MAX_NAME:
        raise InvalidLayer(f"invalid layer entry {name[:100]!r}...: name too long")
    fast = name.split("/")
    if "" not in fast and "." not in fast and ".." not in fast and "\0" not in name:
        return tuple(fast)
    parts = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            raise InvalidLayer(f"invalid layer entry {name!r}: path contains '..'")
        if "\0" in comp:
            raise InvalidLayer(f"invalid layer entry {name!r}: NUL in name")
        parts.append(comp)
    return tuple(parts)


class _Dirs:
    """Directory fds of the snapshot, opened without following symlinks.

    Fds dropped from the cache (it is bounded, and cleared when a directory
    is removed) are only closed by `collect()`, between entries: an entry may
    still hold one, and a closed fd number could be reused for another dir.
    """

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._cache: dict[tuple[str, ...], int] = {}
        self._retired: list[int] = []

    def get(self, comps: tuple[str, ...], *, create: bool = True) -> int:
        fd = self._cache.get(comps) if comps else self.root_fd
        if fd is not None:
            return fd
        # Walk down from the deepest cached ancestor (iteratively: names may be deep).
        i = len(comps) - 1
        while i > 0 and comps[:i] not in self._cache:
            i -= 1
        parent = self._cache[comps[:i]] if i else self.root_fd
        for j in range(i, len(comps)):
            parent = self._open(comps[: j + 1], parent, create)
        return parent

    def _open(self, comps: tuple[str, ...], parent: int, create: bool) -> int:
        name = comps[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            # Layers may omit parent directory entries; Docker creates them 0755.
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidLayer(f"{'/'.join(comps)} is a symlink or not a directory") from None
            raise
        if len(self._cache) >= _FD_CACHE:
            self.clear()
        self._cache[comps] = fd
        return fd

    def clear(self) -> None:
        self._retired.extend(self._cache.values())
        self._cache.clear()

    def collect(self) -> None:
        for fd in self._retired:
            os.close(fd)
        self._retired.clear()

    def close(self) -> None:
        self.clear()
        self.collect()


@dataclass(slots=True)
class _DirMeta:
    uid: int
    gid: int
    mode: int
    mtime_ns: int
    xattrs: dict[str, bytes]


class _Unpacker:
    def __init__(self, root_fd: int) -> None:
        self.dirs = _Dirs(root_fd)
        self.as_root = os.geteuid() == 0
        self.ids = (os.geteuid(), os.getegid())
        self.umask = _umask()
        self.dir_meta: dict[tuple[str, ...], _DirMeta] = {}
        self.size = 0
        self.entries = 0

    # -- helpers ---------------------------------------------------------

    def _remove(self, parent: int, name: str) -> None:
        """Make room for an entry that replaces an earlier one of the same name."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            self.dirs.clear()  # cached fds below it would point into a deleted tree
            remove_at(parent, name)
        else:
            os.unlink(name, dir_fd=parent)

    def _chown(self, name: str, parent: int, m: TarEntry) -> None:
        if self.as_root:
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)

    @staticmethod
    def _xattrs(m: TarEntry) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for xname, raw in m.xattrs.items():
            if not (xname.startswith("user.") or xname == "security.capability"):
                continue  # trusted.*, security.selinux...: not the image's to set
            if len(raw) > MAX_XATTR_VALUE or len(out) >= MAX_XATTRS:
                raise InvalidLayer(f"invalid layer entry {m.name!r}: too many or too large xattrs")
            out[xname] = raw
        return out

    # -- entry kinds -----------------------------------------------------

    def entry(self, tar: TarReader, m: TarEntry) -> None:
        self.dirs.collect()
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise InvalidLayer(f"layer has more than {MAX_ENTRIES} entries")
        comps = clean_name(m.name)
        if not comps:
            if m.type == DIRTYPE:
                return  # the root itself: its metadata belongs to the snapshot
            raise InvalidLayer(f"invalid layer entry {m.name!r}: empty name")
        base = comps[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(comps, m)
            return
        parent = self.dirs.get(comps[:-1])
        if m.type in _FILE_TYPES:
            self._file(tar, parent, base, m)
        elif m.type == DIRTYPE:
            self._dir(parent, comps, m)
        elif m.type == SYMTYPE:
            self._symlink(parent, base, m)
        elif m.type == LNKTYPE:
            self._hardlink(parent, base, m)
        elif m.type in (CHRTYPE, BLKTYPE, FIFOTYPE):
            self._special(parent, base, m)
        else:
            raise InvalidLayer(f"invalid layer entry {m.name!r}: unsupported type {m.type!r}")

    def _whiteout(self, comps: tuple[str, ...], m: TarEntry) -> None:
        base = comps[-1]
        parent = self.dirs.get(comps[:-1])
        if base == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, ...): nothing for overlayfs
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise InvalidLayer(f"invalid layer entry {m.name!r}: bad whiteout")
        self._remove(parent, target)
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)

    def _dir(self, parent: int, comps: tuple[str, ...], m: TarEntry) -> None:
        name = comps[-1]
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            os.mkdir(name, 0o700, dir_fd=parent)
        else:
            if not stat.S_ISDIR(st.st_mode):
                self._remove(parent, name)
                os.mkdir(name, 0o700, dir_fd=parent)
        # Mode, owner and mtime are applied at the end: adding children would
        # bump the mtime, and a 0555 directory would refuse them.
        self.dir_meta[comps] = _DirMeta(
            m.uid, m.gid, stat.S_IMODE(m.mode), m.mtime_ns, self._xattrs(m)
        )

    def _file(self, tar: TarReader, parent: int, name: str, m: TarEntry) -> None:
        perm = stat.S_IMODE(m.mode)
        chown = self.as_root and (m.uid, m.gid) != self.ids
        # Create with the final permissions when the umask cannot strip any and
        # no chown follows (it would clear setuid): saves a syscall per file.
        try:
            fd = os.open(name, _FILE_FLAGS, perm & 0o777, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, name)
            fd = os.open(name, _FILE_FLAGS, perm & 0o777, dir_fd=parent)
        try:
            for view in tar.data(m):
                while view:
                    view = view[os.write(fd, view) :]
            if chown:
                os.fchown(fd, m.uid, m.gid)
            # chmod after chown: chown clears setuid/setgid.
            if chown or perm & ~0o777 or perm & self.umask:
                os.fchmod(fd, perm)
            for key, value in self._xattrs(m).items():
                os.setxattr(fd, key, value)
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
        finally:
            os.close(fd)
        self.size += m.size

    def _symlink(self, parent: int, name: str, m: TarEntry) -> None:
        if len(os.fsencode(m.linkname)) >= MAX_NAME or "\0" in m.linkname:
            raise InvalidLayer(f"invalid layer entry {m.name!r}: bad symlink target")
        self._remove(parent, name)
        os.symlink(m.linkname, name, dir_fd=parent)
        self._chown(name, parent, m)
        os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, name: str, m: TarEntry) -> None:
        target = clean_name(m.linkname)
        if not target:
            raise InvalidLayer(f"invalid layer entry {m.name!r}: hard link to the root")
        try:
            tparent = self.dirs.get(target[:-1], create=False)
            tst = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidLayer(
                f"invalid layer entry {m.name!r}: hard link target {m.linkname!r} not in layer"
            ) from None
        if stat.S_ISDIR(tst.st_mode):
            raise InvalidLayer(f"invalid layer entry {m.name!r}: hard link to a directory")
        try:
            cur = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if (cur.st_ino, cur.st_dev) == (tst.st_ino, tst.st_dev):
                return
        except FileNotFoundError:
            pass
        self._remove(parent, name)
        os.link(target[-1], name, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)

    def _special(self, parent: int, name: str, m: TarEntry) -> None:
        self._remove(parent, name)
        perm = stat.S_IMODE(m.mode)
        if m.type == FIFOTYPE:
            os.mkfifo(name, 0o600, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if m.type == CHRTYPE else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
        self._chown(name, parent, m)
        os.chmod(name, perm, dir_fd=parent, follow_symlinks=True)  # just created: not a link
        os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Apply directory metadata, deepest first (so parents' mtimes stick)."""
        for comps in sorted(self.dir_meta, key=len, reverse=True):
            self.dirs.collect()
            meta = self.dir_meta[comps]
            try:
                fd = self.dirs.get(comps, create=False)
            except (FileNotFoundError, InvalidLayer):
                continue  # replaced by a later entry
            if self.as_root:
                os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            for key, value in meta.xattrs.items():
                os.setxattr(fd, key, value)
            os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777  # unknown: always chmod


def unpack(
    src: BinaryIO, dest_fd: int, *, on_entry: Callable[[str], None] | None = None
) -> UnpackResult:
    """Unpack the layer blob `src` into the (empty) directory open as `dest_fd`."""
    head = src.read(8)
    kind = sniff(head)
    if src.seekable():
        src.seek(-len(head), os.SEEK_CUR)
    else:
        raise InvalidArgument("layer source must be seekable")
    prefetch = _Prefetch(decompressor(src, kind))
    unpacker = _Unpacker(dest_fd)
    current = ""
    try:
        try:
            tar = TarReader(prefetch)
            for m in tar:
                current = m.name
                if on_entry is not None:
                    on_entry(current)
                unpacker.entry(tar, m)
                current = ""  # errors from here on are in the next header
            unpacker.finish()
            diff_id = prefetch.drain()
        except InvalidLayer as exc:
            if current and current not in exc.message:
                raise InvalidLayer(f"invalid layer entry {current!r}: {exc.message}") from None
            raise
        except OSError as exc:
            what = f"entry {current!r}" if current else "data"
            raise InvalidLayer(f"cannot unpack layer {what}: {exc.strerror or exc}") from None
        except PortiqueError:
            raise
        except Exception as exc:
            # Decompressors raise their own types (zstd.ZstdError, isal's error,
            # EOFError on truncation): all mean the blob is not a valid layer.
            what = f" at entry {current!r}" if current else ""
            raise InvalidLayer(f"invalid layer data{what}: {exc}") from None
    finally:
        prefetch.close()
        unpacker.dirs.close()
    return UnpackResult(diff_id, unpacker.size, unpacker.entries, kind)


__all__ = [
    "Compression",
    "InvalidLayer",
    "UnpackResult",
    "clean_name",
    "decompressor",
    "sniff",
    "unpack",
]
