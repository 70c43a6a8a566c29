"""The runtime's own error, the mapping of a child's `Failed` report to the
error the caller sees (126/127 by the execve errno), and warnings."""

from __future__ import annotations

from portique.errors import CommandNotExecutable, CommandNotFound, PortiqueError

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from portique.runtime.sync import Failed


class ContainerError(PortiqueError):
    """A container operation failed in the kernel, the init or a hook."""


def failed_to_error(msg: Failed) -> PortiqueError:
    if msg.error == "notfound":
        return CommandNotFound(msg.message)
    if msg.error == "notexec":
        return CommandNotExecutable(msg.message)
    return ContainerError(msg.message)


def os_message(exc: OSError, bare: str = "") -> str:
    """An OSError's text (its strerror; `bare` when it has none), with its file
    name when the text does not hold it already."""
    text = exc.strerror or bare
    if exc.filename and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return text


class naming:  # lower case: it reads as a function, `with naming(what):`
    """Prefix an OSError with what was being done (a config field, a step of
    the init): callers only see the one line, which then says where it failed.
    A class, not contextlib's decorator: see runtime/undo.py."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, e: BaseException | None, tb: object) -> None:
        if isinstance(e, OSError):
            raise OSError(e.errno, f"{self.what}: {self._text(e)}") from None

    def _text(self, e: OSError) -> str:
        return os_message(e, str(e))


class step(naming):  # `with step(what):`
    """naming for the init's steps: `oomScoreAdj -998: writing
    /proc/self/oom_score_adj: Permission denied`, not a bare `Permission
    denied`. An OSError without a strerror gives nothing after the colon (its
    str() is not added, as it is by naming)."""

    __slots__ = ()

    def _text(self, e: OSError) -> str:
        return os_message(e)


def warn(message: str) -> None:
    import sys

    print(f"portique-runtime: warning: {message}", file=sys.stderr)


__all__ = ["ContainerError", "failed_to_error", "warn"]
