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


def warn(message: str) -> None:
    import sys

    print(f"portique-runtime: warning: {message}", file=sys.stderr)


__all__ = ["ContainerError", "failed_to_error", "warn"]
