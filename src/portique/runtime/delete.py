"""`delete`: kill and reap whatever is left, remove the cgroup, run the
poststop hooks, remove the state."""

from __future__ import annotations

import builtins
import time

from portique.errors import InvalidState, PortiqueError
from portique.linux import proc as procfs
from portique.oci.value import replace
from portique.runtime import state as st
from portique.runtime.children import kill_quiet, reap_quiet
from portique.runtime.errors import ContainerError, warn
from portique.runtime.kill import signal_init
from portique.runtime.state import State, Status

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    import signal

    from portique.oci.runtime import Spec
    from portique.runtime.container import Runtime
else:
    import _signal as signal  # the numbers and calls, without signal's enum wrappers


def delete(rt: Runtime, container_id: str, *, force: bool = False) -> None:
    """Delete the container (the caller holds the lock)."""
    s = rt._refresh(rt._load(container_id))
    # The spec: deleting a container that is not stopped MUST fail,
    # a created one included (runc 1.1 deletes that one anyway).
    if s.status is not Status.STOPPED and not force:
        raise InvalidState(
            f"cannot delete container {container_id} that is not stopped: {s.status}",
            hint="kill it first or use --force",
        )
    # Even a stopped container may have an unreaped init (our child when
    # we are a subreaper) or leftovers in its cgroup: kill and reap them
    # all, or the cgroup cannot be removed.
    kill_all_and_wait(rt, s)
    errors: list[str] = []
    spec: Spec | None
    try:
        spec = rt._spec_of(s)
    except PortiqueError as e:
        errors.append(str(e))
        spec = None
    try:
        rt._manager(s).destroy()
    except (PortiqueError, OSError) as e:
        errors.append(f"cgroup: {e}")
    if spec is not None and spec.hooks.poststop:
        from portique.runtime.hooks import HookError, run_hooks

        try:
            run_hooks(
                "poststop",
                spec.hooks.poststop,
                replace(s, status=Status.STOPPED).to_oci_json(),
            )
        except HookError as e:
            warn(str(e))
    st.remove_state_dir(rt._dir(container_id))
    rt._managers.pop((s.cgroups_path, s.id), None)
    rt._specs.pop(s.id, None)
    if errors:
        raise ContainerError(f"delete {container_id}: " + "; ".join(errors))


def kill_all_and_wait(rt: Runtime, s: State) -> None:
    manager = rt._manager(s)
    try:
        if manager.is_frozen():
            for pid in manager.pids():
                kill_quiet(pid, signal.SIGKILL)
            manager.thaw()
    except (PortiqueError, OSError):
        pass
    signal_init(s, signal.SIGKILL, quiet=True)
    # With a pid namespace, the init's death takes every process with it;
    # without one, kill what is left in the cgroup.
    deadline = time.monotonic() + 10
    delay = 0.001
    # A pid namespace's init finishes dying only once every process of the
    # namespace is reaped; some may be our children (we may be their
    # subreaper), so reap every pid ever seen in the cgroup.
    seen: set[int] = {s.pid}
    while time.monotonic() < deadline:
        pids: builtins.list[int] = []
        try:
            pids = manager.pids()
        except (PortiqueError, OSError):
            pass
        seen.update(pids)
        for pid in pids:
            kill_quiet(pid, signal.SIGKILL)
        for pid in seen:
            reap_quiet(pid)
        if not pids and not procfs.is_alive(s.pid, s.start_time or None):
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    raise ContainerError(f"container {s.id}: processes did not die after SIGKILL")


__all__ = ["delete"]
