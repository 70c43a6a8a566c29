"""The content store: blobs addressed by digest, verified before they are trusted.

Layout under the engine root:

    blobs/<algorithm>/<hex>          verified blobs, written once, never modified
    ingest/<algorithm>-<hex>.part    a download in progress (or interrupted: resumable)
    ingest/<algorithm>-<hex>.lock    flock(2) target serialising fetches of one digest

A blob reaches blobs/ only by rename(2) of a partial file whose digest and size
were checked, after fsync: nothing under blobs/ is ever unverified, and a crash
leaves at worst a partial in ingest/, which the next ingest of that digest
resumes (re-hashing the kept prefix).

Every file in ingest/ is flock(2)ed while someone works on it, and the lock
dies with its process: so a file nobody holds is abandoned, whatever its age.
`sweep` removes abandoned lock files at once and abandoned partials once they
are too old or too many to be worth resuming (a hostile registry that breaks
every download cannot make them pile up); `sweep(keep_partials=False)`
(`system prune`) removes every abandoned partial. Blobs we produce ourselves
(`new_blob`) are written to an unnamed O_TMPFILE and linked in when complete,
so a crash leaves nothing of them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from portique.errors import NotFound
from portique.oci.digest import DigestMismatch, Verifier, algorithm_of, parse_digest

_CHUNK = 1 << 20
# Partial downloads nobody resumed within a day are garbage.
STALE_SECONDS = 24 * 3600
# Abandoned partials kept for a resumed download, newest first; older ones go.
MAX_KEPT_PARTIALS = 8


class Writer:
    """Receives a blob's bytes; returned by `ContentStore.ingest`.

    `offset` is how many bytes an earlier, interrupted ingest already kept: the
    caller continues from there (an HTTP Range request) or calls `restart()`.
    """

    def __init__(self, store: ContentStore, digest: str, size: int | None) -> None:
        self._store = store
        self.digest = digest
        self._partial = store.ingest_dir / f"{_flat(digest)}.part"
        self._verifier = Verifier(digest, size)
        self._fd = -1
        self._open()

    def _open(self) -> None:
        # Two writers of one partial would interleave bytes: lock the file, and
        # make sure the file we locked is still the one at the path (the other
        # writer may have renamed it into blobs/ or deleted it meanwhile).
        for _ in range(100):
            fd = os.open(self._partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                try:
                    cur = os.stat(self._partial)
                except FileNotFoundError:
                    os.close(fd)
                    continue
                if (cur.st_ino, cur.st_dev) != (st.st_ino, st.st_dev):
                    os.close(fd)
                    continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            break
        else:  # pragma: no cover - needs 100 lost races in a row
            raise OSError(f"cannot lock partial blob {self._partial}")
        expected = self._verifier.expected_size
        if expected is not None and st.st_size > expected:
            os.ftruncate(self._fd, 0)
        self._rehash()

    def _rehash(self) -> None:
        """Hash the prefix an earlier ingest kept, so the final check covers it."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        while True:
            buf = os.read(self._fd, _CHUNK)
            if not buf:
                break
            self._verifier.update(buf)

    @property
    def offset(self) -> int:
        return self._verifier.offset

    def restart(self) -> None:
        """Drop the kept prefix (e.g. the server ignored the Range request)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._verifier = Verifier(self.digest, self._verifier.expected_size)

    def write(self, data: bytes | memoryview) -> None:
        self._verifier.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def _commit(self) -> None:
        self._verifier.verify()
        os.fsync(self._fd)
        target = self._store.path(self.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self._partial, 0o644)
        os.rename(self._partial, target)
        _fsync_dir(target.parent)

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                try:
                    self._commit()
                except DigestMismatch:
                    self._discard()
                    raise
            elif isinstance(exc, DigestMismatch):
                self._discard()
            # Any other failure (network, interrupt) keeps the partial for resume.
        finally:
            self.close()


class NewBlob:
    """Receives a blob we generate (a layer from `commit`); hashed as written.

    On clean exit of its `with` block the file is fsynced and linked into
    blobs/ under the digest computed from the very bytes written; `digest`
    and `size` then describe it. Until then it is an unnamed O_TMPFILE in
    ingest/, so neither an error nor a crash leaves anything behind.
    """

    def __init__(self, store: ContentStore) -> None:
        import hashlib

        self._store = store
        self._tmp: Path | None = None
        try:
            self._fd = os.open(store.ingest_dir, os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            # A file system without O_TMPFILE: a named file, flocked so that
            # `sweep` can tell it from a crash's leftover.
            self._tmp = store.ingest_dir / f"new-{os.urandom(8).hex()}.part"
            self._fd = os.open(
                self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def write(self, data: bytes | memoryview) -> int:
        self._hash.update(data)
        view = memoryview(data)
        n = len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        self.size += n
        return n

    def __enter__(self) -> NewBlob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                os.fsync(self._fd)
                self.digest = "sha256:" + self._hash.hexdigest()
                target = self._store.path(self.digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.fchmod(self._fd, 0o644)
                if self._tmp is not None:
                    os.rename(self._tmp, target)
                    _fsync_dir(target.parent)
                else:
                    self._link(target)
        finally:
            os.close(self._fd)
            if self._tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tmp)

    def _link(self, target: Path) -> None:
        """Give the O_TMPFILE its name: linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N
        (os.link uses linkat, with that flag, only when given a dir fd)."""
        dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                os.link(f"/proc/self/fd/{self._fd}", target.name, dst_dir_fd=dfd)
            except FileExistsError:
                return  # the same content is already stored
            os.fsync(dfd)
        finally:
            os.close(dfd)


class ContentStore:
    """Verified blobs under `root`/blobs; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs"
        self.ingest_dir = root / "ingest"
        self.ingest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, digest: str) -> Path:
        algorithm, _, hexpart = parse_digest(digest).partition(":")
        return self.blobs_dir / algorithm / hexpart

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"no such blob: {digest}") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")  # the caller closes it
        except FileNotFoundError:
            raise NotFound(f"no such blob: {digest}") from None

    def read_bytes(self, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (manifest, config) in memory, refusing more than `limit` bytes."""
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise DigestMismatch(f"blob {digest} is larger than {limit} bytes")
        return data

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))

    def digests(self) -> Iterator[str]:
        for algo_dir in sorted(self.blobs_dir.glob("*")):
            for blob in sorted(algo_dir.iterdir()):
                yield f"{algo_dir.name}:{blob.name}"

    def ingest(self, expected_digest: str, expected_size: int | None = None) -> Writer:
        """A writer for one blob; commits on clean exit of its `with` block."""
        parse_digest(expected_digest)
        return Writer(self, expected_digest, expected_size)

    def lock(self, digest: str) -> contextlib.AbstractContextManager[None]:
        """Hold an exclusive per-digest lock (across processes) for a fetch.

        The lock file goes away on release, whatever the outcome (see
        `flock_file`), so a store holds lock files only for fetches in
        progress, or killed ones, which `sweep` removes.
        """
        lock_path = self.ingest_dir / f"{_flat(parse_digest(digest))}.lock"
        return flock_file(lock_path, remove_if=lambda: True)

    def new_blob(self) -> NewBlob:
        """A writer for content we produce ourselves (its digest is known at the end)."""
        return NewBlob(self)

    def write_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        """Store `data` (checked against `expected_digest` when given); return its digest."""
        import hashlib

        if expected_digest is None:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        else:
            digest = parse_digest(expected_digest)
            actual = f"{algorithm_of(digest)}:{hashlib.new(algorithm_of(digest), data).hexdigest()}"
            if actual != digest:
                raise DigestMismatch(f"blob {digest}: content hashes to {actual}")
        if self.has(digest):
            return digest
        with self.lock(digest), self.ingest(digest, len(data)) as w:
            if w.offset:
                w.restart()
            w.write(data)
        return digest

    def clean_stale(self, max_age: float = STALE_SECONDS) -> int:
        """Remove abandoned ingest files; partials only once `max_age` seconds old."""
        return self.sweep(max_age=max_age)

    def sweep(
        self,
        *,
        keep_partials: bool = True,
        max_age: float = STALE_SECONDS,
        keep: int = MAX_KEPT_PARTIALS,
    ) -> int:
        """Remove what dead fetches left in ingest/; return how many files went.

        Only files nobody holds a lock on: lock files at once; partials when
        not `keep_partials`, else those older than `max_age` or beyond the
        `keep` newest (kept for a resumed download). A partial whose digest's
        fetch lock is held is live too: that fetch is about to resume it.
        """
        now = time.time()
        removed = 0
        partials: list[tuple[float, str]] = []
        try:
            entries = list(os.scandir(self.ingest_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            name = entry.name
            if name.endswith(".lock") or name.startswith("new-"):
                removed += remove_if_unlocked(Path(entry.path))
            elif name.endswith(".part"):
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                partials.append((mtime, name))
        partials.sort(reverse=True)
        for i, (mtime, name) in enumerate(partials):
            if keep_partials and i < keep and now - mtime < max_age:
                continue
            if _is_locked(self.ingest_dir / (name[: -len(".part")] + ".lock")):
                continue
            removed += remove_if_unlocked(self.ingest_dir / name)
        return removed

    def sweep_digest(self, digest: str) -> int:
        """A dead fetch of `digest` (a journal entry): its lock file, if nobody holds it.
        The partial stays for a resumed download; `sweep` bounds what is kept."""
        return remove_if_unlocked(self.ingest_dir / f"{_flat(parse_digest(digest))}.lock")


@contextlib.contextmanager
def flock_file(path: Path, remove_if: Callable[[], bool] | None = None) -> Iterator[None]:
    """flock(2) `path` exclusively; on release unlink it when `remove_if()` says so.

    Unlinking a lock file is safe because every locker checks, once it holds
    the lock, that the file it locked is still the one at `path` (else it
    locked a file someone just removed, and starts over).
    """
    for _ in range(1000):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                cur = os.stat(path)
                same = (cur.st_ino, cur.st_dev) == (st.st_ino, st.st_dev)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - a thousand lost races
        raise OSError(f"cannot lock {path}")
    try:
        yield
    finally:
        try:
            if remove_if is not None and remove_if():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        finally:
            os.close(fd)


def remove_if_unlocked(path: Path) -> int:
    """Unlink `path` if no process holds a flock on it; 1 if it went, else 0.

    We take the lock ourselves (without waiting) before unlinking, and every
    locker re-checks, once it holds its lock, that its file is still the one
    at the path: so a file someone is about to lock is never pulled from
    under them.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    except OSError:  # a symlink or worse: not one of ours, remove it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            return 1
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        st = os.fstat(fd)
        try:
            cur = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return 0
        if (cur.st_ino, cur.st_dev) != (st.st_ino, st.st_dev):
            return 0
        os.unlink(path)
        return 1
    finally:
        os.close(fd)


def _is_locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _flat(digest: str) -> str:
    return digest.replace(":", "-")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["ContentStore", "NewBlob", "Writer", "flock_file", "remove_if_unlocked"]
