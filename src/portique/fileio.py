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

import contextlib
import os

from portique.pathtext import pure_text

TYPE_CHECKING = False  # typing costs portique-runtime's every state write an import
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO, Final

    from _typeshed import StrPath

_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def _replacing(path: StrPath, mode: int, fsync: bool) -> Iterator[int]:
    """The fd of the temp file; renamed over `path` when the block ends, removed if it raises."""
    # os.path, not pathlib: portique-runtime writes its state here, and
    # importing pathlib costs it ~4 ms a call.
    where, name = os.path.split(pure_text(os.fspath(path)))
    tmp = os.path.join(where, f".{name}.tmp.{os.getpid()}")
    fd = os.open(tmp, _FLAGS, mode)
    try:
        try:
            yield fd
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextlib.contextmanager
def atomic_file(path: StrPath, mode: int = 0o644, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content to: renamed over `path` when the
    block ends, removed if it raises. `mode` is subject to the umask."""
    with _replacing(path, mode, fsync) as fd, open(fd, "wb", closefd=False) as f:
        yield f


def atomic_write(path: StrPath, data: bytes, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Replace `path` with `data`."""
    with _replacing(path, mode, fsync) as fd:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


def atomic_write_json(path: StrPath, obj: Any, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Replace `path` with `obj` as compact JSON."""
    from portique.jsonc import dumps

    atomic_write(path, dumps(obj, separators=(",", ":")).encode(), mode, fsync=fsync)


__all__ = ["atomic_file", "atomic_write", "atomic_write_json"]
