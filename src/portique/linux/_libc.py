"""The one place that loads libc through ctypes.

Every wrapper in linux/ calls `check()` on the raw result: it retries EINTR
(PEP 475 does not cover ctypes calls) and raises OSError naming the call.
"""

from __future__ import annotations

import ctypes
import errno
import os

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

libc = ctypes.CDLL(None, use_errno=True)


def call(name: str, fn: Callable[[], int], path: str | None = None) -> int:
    """Run `fn` (a libc call returning -1 on error), retrying on EINTR."""
    while True:
        ret = fn()
        if ret != -1:
            return ret
        err = ctypes.get_errno()
        if err == errno.EINTR:
            continue
        msg = f"{name}: {os.strerror(err)}"
        if path is not None:
            raise OSError(err, msg, path)
        raise OSError(err, msg)


def fsencode(path: str | bytes | os.PathLike[str] | None) -> bytes | None:
    if path is None:
        return None
    return os.fsencode(path)
