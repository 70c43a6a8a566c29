"""runtime/state.py: the transition table, predicates, fact-derived status, state.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from portique.errors import InvalidState
from portique.runtime import state as st
from portique.runtime.state import Op, State, Status


@pytest.mark.parametrize(
    ("status", "start", "kill", "delete", "pause", "resume", "exec_"),
    [
        (Status.CREATING, False, False, False, False, False, False),
        (Status.CREATED, True, True, True, False, False, True),
        (Status.RUNNING, False, True, False, True, False, True),
        (Status.PAUSED, False, True, False, False, True, False),
        (Status.STOPPED, False, False, True, False, False, False),
    ],
)
def test_predicates_per_status(
    status: Status, start: bool, kill: bool, delete: bool, pause: bool, resume: bool, exec_: bool
) -> None:
    assert st.can_start(status) is start
    assert st.can_kill(status) is kill
    assert st.can_delete(status) is delete
    assert st.can_pause(status) is pause
    assert st.can_resume(status) is resume
    assert st.can_exec(status) is exec_


def test_next_status_and_illegal_event() -> None:
    assert st.next_status(Status.CREATED, Op.START) is Status.RUNNING
    assert st.next_status(Status.RUNNING, Op.PAUSE) is Status.PAUSED
    assert st.next_status(Status.PAUSED, Op.RESUME) is Status.RUNNING
    assert st.next_status(Status.RUNNING, Op.EXIT) is Status.STOPPED
    with pytest.raises(InvalidState, match="cannot start an already running container"):
        st.next_status(Status.RUNNING, Op.START)
    with pytest.raises(InvalidState, match="container not running"):
        st.next_status(Status.STOPPED, Op.PAUSE)


def _reachable(start: Status) -> set[Status]:
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        for (src, _), dst in st.TRANSITIONS.items():
            if src is current and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def test_every_status_is_reached_and_every_one_can_end() -> None:
    assert _reachable(Status.CREATING) == set(Status)
    for status in Status:
        assert Status.STOPPED in _reachable(status), status
    # The init may die in any live status.
    for status in set(Status) - {Status.STOPPED}:
        assert st.next_status(status, Op.EXIT) is Status.STOPPED, status


@pytest.mark.parametrize(
    ("stored", "alive", "fifo", "frozen", "want"),
    [
        (Status.RUNNING, False, False, False, Status.STOPPED),
        (Status.CREATED, False, True, False, Status.STOPPED),
        (Status.CREATING, True, True, False, Status.CREATING),
        (Status.RUNNING, True, False, True, Status.PAUSED),
        (Status.RUNNING, True, True, False, Status.CREATED),
        (Status.CREATED, True, False, False, Status.RUNNING),
        (Status.PAUSED, True, False, False, Status.RUNNING),
    ],
)
def test_derive_status_trusts_facts(
    stored: Status, alive: bool, fifo: bool, frozen: bool, want: Status
) -> None:
    assert st.derive_status(stored, init_alive=alive, fifo_exists=fifo, frozen=frozen) is want


def _state(**kw: object) -> State:
    base: dict[str, object] = {
        "id": "c1",
        "status": Status.RUNNING,
        "pid": 42,
        "bundle": "/b",
        "rootfs": "/b/rootfs",
        "created": "2026-01-01T00:00:00.000000Z",
        "annotations": {"k": "v"},
        "start_time": 1234,
        "cgroups_path": "/portique/c1",
        "config": {"ociVersion": "1.2.0"},
    }
    base.update(kw)
    return State(**base)  # type: ignore[arg-type]


def test_state_round_trip(tmp_path: Path) -> None:
    s = _state()
    st.write_state(tmp_path, s)
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600
    assert st.read_state(tmp_path) == s
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temp file left


def test_runc_json_shape() -> None:
    j = _state().to_runc_json()
    assert j == {
        "ociVersion": st.OCI_VERSION,
        "id": "c1",
        "pid": 42,
        "status": "running",
        "bundle": "/b",
        "rootfs": "/b/rootfs",
        "created": "2026-01-01T00:00:00.000000Z",
        "owner": "",
        "annotations": {"k": "v"},
    }
    assert _state(status=Status.STOPPED).to_runc_json()["pid"] == 0
    hook = _state(status=Status.CREATING).to_oci_json()
    assert hook["status"] == "creating"
    assert hook["pid"] == 42
    assert hook["annotations"] == {"k": "v"}
