"""The error hierarchy every face presents to the user.

A `PortiqueError` knows its exit code (the CLI), its HTTP status (the API) and
an optional hint (what to do). Messages are lowercase, name the object, and
carry no final period.
"""

from __future__ import annotations


class PortiqueError(Exception):
    """An error the user should see as one line, not a traceback."""

    exit_code: int = 125
    http_status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidArgument(PortiqueError):
    http_status = 400


class NotFound(PortiqueError):
    http_status = 404


class NoSuchObject(NotFound):
    """An object the user named does not exist. Both faces word it as Docker
    does: `Error: No such container: X` and exit 1 at the CLI, 404 with
    `No such container: X` at the API; `kind` is container, image, network,
    volume, or object (an untyped `inspect`)."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"no such {kind}: {shown(ref) if ref else repr(ref)}")
        self.kind = kind
        self.ref = ref

    def docker_text(self) -> str:
        """Docker's sentence: "No such container: X"."""
        return f"No such {self.kind}: {shown(self.ref)}"


class Conflict(PortiqueError):
    http_status = 409


class InvalidState(Conflict):
    """The object exists but is in the wrong state for the operation."""


class CommandNotExecutable(PortiqueError):
    """The container's command exists but cannot be executed (EACCES, ENOEXEC)."""

    exit_code = 126


class CommandNotFound(PortiqueError):
    """The container's command does not exist (ENOENT)."""

    exit_code = 127


class Unsupported(PortiqueError):
    http_status = 501


def shown(value: str, limit: int = 64) -> str:
    """A user's value for a one-line message: control characters escaped
    (a newline must not split the line), long values cut."""
    text = value if value.isprintable() else value.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = [
    "CommandNotExecutable",
    "CommandNotFound",
    "Conflict",
    "InvalidArgument",
    "InvalidState",
    "NoSuchObject",
    "NotFound",
    "PortiqueError",
    "Unsupported",
    "shown",
]
