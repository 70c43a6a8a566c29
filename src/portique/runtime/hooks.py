"""Running OCI hooks: the state JSON on stdin, the hook's own env, its timeout."""

from __future__ import annotations

import os
import time

from portique import jsonc
from portique.errors import PortiqueError
from portique.oci.runtime import Hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


class HookError(PortiqueError):
    """A hook failed, timed out or could not be started."""


def run_hooks(phase: str, hooks: tuple[Hook, ...], state: dict[str, object]) -> None:
    """Run each hook in order; the first failure raises HookError naming it."""
    if not hooks:
        return
    data = jsonc.dumps(state, separators=(",", ":")).encode()
    for hook in hooks:
        run_hook(phase, hook, data)


def run_hook(phase: str, hook: Hook, stdin: bytes) -> None:
    # fork+exec by hand rather than subprocess: no extra imports on the start
    # path, and the hook gets exactly its own env (empty when none is given).
    r, w = os.pipe()
    argv = list(hook.args) or [hook.path]
    env = dict(kv.split("=", 1) for kv in hook.env)
    try:
        pid = os.posix_spawn(
            hook.path,
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)],
            setsid=True,
        )
    except OSError as e:
        os.close(r)
        os.close(w)
        raise HookError(f"{phase} hook {hook.path}: {e.strerror}") from None
    os.close(r)
    try:
        _write_all(w, stdin)
    except BrokenPipeError:
        pass  # the hook need not read its stdin
    finally:
        os.close(w)
    status = _wait(pid, hook.timeout)
    if status is None:
        raise HookError(f"{phase} hook {hook.path}: timed out after {hook.timeout}s")
    if status != 0:
        raise HookError(f"{phase} hook {hook.path}: exited with status {status}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _wait(pid: int, timeout: int | None) -> int | None:
    """The exit code (128+signal when killed), or None after killing it on timeout."""
    if timeout is None:
        _, status = os.waitpid(pid, 0)
        return _code(status)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _code(status)
        if time.monotonic() >= deadline:
            # The hook ran in its own session: kill its whole group.
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
