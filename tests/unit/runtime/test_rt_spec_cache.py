"""Runtime._spec_of parses a container's config once per config, not once per call."""

from __future__ import annotations

from pathlib import Path

from portique.runtime import Runtime
from portique.runtime.default_spec import default_spec
from portique.runtime.state import State, Status


def _state(config: dict[str, object], cid: str = "c1") -> State:
    return State(
        id=cid,
        status=Status.RUNNING,
        pid=1,
        bundle="/b",
        rootfs="/b/rootfs",
        created="2026-01-01T00:00:00Z",
        config=config,
    )


def test_same_config_same_spec(tmp_path: Path) -> None:
    rt = Runtime(tmp_path)
    config = default_spec()
    first = rt._spec_of(_state(config))
    # An equal config read again from state.json: the parsed spec is reused.
    assert rt._spec_of(_state(default_spec())) is first


def test_another_config_is_parsed_again(tmp_path: Path) -> None:
    rt = Runtime(tmp_path)
    first = rt._spec_of(_state(default_spec()))
    changed = default_spec()
    changed["hostname"] = "other"
    second = rt._spec_of(_state(changed))
    assert second is not first
    assert second.hostname == "other"
    assert rt._spec_of(_state(default_spec(), cid="c2")) is not second


def test_state_root_is_still_a_path(tmp_path: Path) -> None:
    rt = Runtime(str(tmp_path) + "/./")
    assert rt.state_root == tmp_path
    assert rt.seccomp_cache == tmp_path / "@seccomp"
