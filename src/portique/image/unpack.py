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
taken from the media type alone (image/compression.py). Decompression and
hashing of the uncompressed stream (the layer's diff_id) run in a helper
thread, so they overlap with the file system work of the tar reader
(image/tarreader.py).
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
from typing import Any, BinaryIO, Final, cast

from portique.errors import PortiqueError
from portique.image import ovlxattr
from portique.image.compression import Compression, Readable, detect, open_reader
from portique.image.snapshots import remove_at
from portique.image.tarreader import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    FILE_TYPES,
    LNKTYPE,
    SYMTYPE,
    InvalidLayer,
    TarEntry,
    TarReader,
)

MAX_NAME: Final = 4096  # bytes in a path, as PATH_MAX
MAX_XATTRS: Final = 128  # per entry
MAX_XATTR_VALUE: Final = 64 << 10
MAX_ENTRIES: Final = 4_000_000
_BLOCK: Final = 1 << 20
_FD_CACHE: Final = 256

WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
OPAQUE_XATTR: Final = "trusted.overlay.opaque"  # as root (image/ovlxattr.py)

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# What a layer may be compressed with (xz and bzip2 are in no layer media type).
LAYER_COMPRESSIONS: Final = frozenset({Compression.GZIP, Compression.ZSTD, Compression.NONE})


@dataclass(frozen=True, slots=True)
class UnpackResult:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of regular file content
    entries: int
    compression: Compression


def sniff(head: bytes) -> Compression:
    """A layer's compression from its first bytes; InvalidLayer for one no layer uses."""
    kind = detect(head)
    if kind not in LAYER_COMPRESSIONS:
        raise InvalidLayer(f"unsupported layer compression {kind}")
    return kind


class _Prefetch:
    """Decompress and hash in a background thread; hand the blocks to the tar reader.

    zlib/ISA-L, zstd and sha256 all release the GIL on large buffers, so this
    thread runs beside the tar reader that creates files.
    """

    def __init__(self, raw: Readable) -> None:
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
            if ovlxattr.is_private(xname):
                continue  # user.overlay.*: a rootless overlay's own (image/ovlxattr.py)
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
        if m.type in FILE_TYPES:
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
            os.setxattr(parent, ovlxattr.opaque(), b"y")
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
        # Created first, removed only when the name is taken (as _file): a
        # layer of applet links pays no stat per link.
        try:
            os.symlink(m.linkname, name, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, name)
            os.symlink(m.linkname, name, dir_fd=parent)
        if (m.uid, m.gid) != self.ids:  # a new link is already ours (as _file)
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


def replayed(head: bytes, rest: BinaryIO) -> BinaryIO:
    """A reader of `head` then `rest` (a stream that cannot seek back)."""
    import io

    class Replay(io.RawIOBase):
        def __init__(self) -> None:
            self.pending = head

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            view = memoryview(buf).cast("B")
            if self.pending:
                n = min(len(view), len(self.pending))
                view[:n] = self.pending[:n]
                self.pending = self.pending[n:]
                return n
            data = rest.read(len(view))
            view[: len(data)] = data
            return len(data)

    return cast("BinaryIO", io.BufferedReader(Replay(), 1 << 16))


def unpack(
    src: BinaryIO, dest_fd: int, *, on_entry: Callable[[str], None] | None = None
) -> UnpackResult:
    """Unpack the layer blob `src` into the (empty) directory open as `dest_fd`."""
    head = src.read(8)
    kind = sniff(head)
    if src.seekable():
        src.seek(-len(head), os.SEEK_CUR)
    else:
        src = replayed(head, src)  # a pipe (`tar c . | portique build -`)
    prefetch = _Prefetch(open_reader(src, kind))
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
            if exc.errno == errno.EINVAL and unpacker.as_root:
                from portique.subids import advice, single_id

                if single_id():  # a rootless engine without subordinate ids
                    raise InvalidLayer(
                        f"cannot unpack layer {what}: its owner is not root, the only id"
                        f" mapped here ({advice()})"
                    ) from None
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
    "replayed",
    "sniff",
    "unpack",
]
