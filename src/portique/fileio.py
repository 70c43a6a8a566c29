"""Atomic file writes: a temp file in the same directory, renamed over the target.

A crash at any point leaves either the old file or the new one, never half
of either. The caller chooses whether the new content is fsynced before the
rename: a file that must survive a power cut (credentials, image and build
documents, a saved archive) is; a file that is rewritten on every start or
lives on a tmpfs (runtime state.json, a container's hosts, resolv.conf and
config.json) need only be atomic against a crashed process, and an fsync
would cost every `run` milliseconds on a loaded host.

The temp file is `.<name>.tmp.<pid>`, opened without following a symlink.
"""

from __future__ import annotations

import os

from portique.pathtext import pure_text

TYPE_CHECKING = False  # typing costs portique-runtime's every state write an import
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from typing import Any, BinaryIO, Final

    from _typeshed import StrPath

_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class _Replacing:
    """The fd of the temp file; renamed over `path` when the block ends,
    removed if it raises. A class, not contextlib's decorator: every
    portique-runtime call writes its state through here, and contextlib
    costs a cold call ~1 ms of imports (runtime/undo.py)."""

    __slots__ = ("fd", "fsync", "mode", "path", "tmp")

    def __init__(self, path: StrPath, mode: int, fsync: bool) -> None:
        # os.path, not pathlib: importing pathlib costs portique-runtime ~4 ms a call.
        where, name = os.path.split(pure_text(os.fspath(path)))
        self.path = path
        self.mode = mode
        self.fsync = fsync
        self.tmp = os.path.join(where, f".{name}.tmp.{os.getpid()}")
        self.fd = -1

    def __enter__(self) -> int:
        self.fd = os.open(self.tmp, _FLAGS, self.mode)
        return self.fd

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        try:
            try:
                if kind is None and self.fsync:
                    os.fsync(self.fd)
            finally:
                os.close(self.fd)
            if kind is None:
                os.rename(self.tmp, self.path)
        except BaseException:
            self._remove()
            raise
        if kind is not None:
            self._remove()

    def _remove(self) -> None:
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def atomic_file(
    path: StrPath, mode: int = 0o644, *, fsync: bool = True
) -> AbstractContextManager[BinaryIO]:
    """A file to write `path`'s new content to: renamed over `path` when the
    block ends, removed if it raises. `mode` is subject to the umask."""
    import contextlib  # here: the runtime's state writes never need it

    return contextlib.contextmanager(_atomic_file)(path, mode, fsync)


def _atomic_file(path: StrPath, mode: int, fsync: bool) -> Iterator[BinaryIO]:
    with _Replacing(path, mode, fsync) as fd, open(fd, "wb", closefd=False) as f:
        yield f


def atomic_write(path: StrPath, data: bytes, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Replace `path` with `data`."""
    with _Replacing(path, mode, fsync) as fd:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


def atomic_write_json(path: StrPath, obj: Any, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Replace `path` with `obj` as compact JSON."""
    from portique.jsonc import dumps

    atomic_write(path, dumps(obj, separators=(",", ":")).encode(), mode, fsync=fsync)


__all__ = ["atomic_file", "atomic_write", "atomic_write_json"]
