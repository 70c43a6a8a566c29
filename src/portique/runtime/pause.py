"""`pause` and `resume`: the cgroup freezer (the caller holds the lock)."""

from __future__ import annotations

from portique.oci.value import replace
from portique.runtime import state as st
from portique.runtime.state import Op

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from portique.runtime.container import Runtime


def pause(rt: Runtime, container_id: str) -> None:
    s = rt._refresh(rt._load(container_id))
    new = st.next_status(s.status, Op.PAUSE, container_id)
    rt._manager(s).freeze()
    st.write_state(rt._dir(container_id), replace(s, status=new))


def resume(rt: Runtime, container_id: str) -> None:
    s = rt._refresh(rt._load(container_id))
    new = st.next_status(s.status, Op.RESUME, container_id)
    rt._manager(s).thaw()
    st.write_state(rt._dir(container_id), replace(s, status=new))


__all__ = ["pause", "resume"]
