"""EarlySetup (engine/earlynet.py) wires the endpoints beside the runtime's create,
but writes the container's hosts and resolv.conf only once the monitor created
it: before then the bundle's files (hostname among them) may not exist yet.
The child's set-up is replaced here by one that reports what it saw."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from portique.engine import earlynet


def test_files_are_written_only_after_the_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostname = tmp_path / "hostname"  # what bundle.prepare writes in the monitor
    entered_r, entered_w = os.pipe()

    def fake_setup(
        eng: Any, row: Any, pid: int, stack: ExitStack, netns: str = "", before_files: Any = None
    ) -> dict[str, Any]:
        os.write(entered_w, b"x")  # wiring now, beside the create
        assert before_files is not None
        before_files()  # returns once the monitor has created the container
        return {"netns": netns, "pid": pid, "hostname_there": hostname.exists()}

    monkeypatch.setattr(earlynet, "setup", fake_setup)
    monkeypatch.setattr(earlynet, "_new_netns", lambda: os.open(os.devnull, os.O_RDONLY))
    early = earlynet.EarlySetup(None, None)  # type: ignore[arg-type]
    try:
        assert early.netns.startswith(f"/proc/{early.pid}/fd/")
        assert os.read(entered_r, 1) == b"x"  # the child is wiring
        hostname.write_text("c1\n")  # the monitor's bundle, then its create
        settings = early.finish(4242)
    finally:
        early.close()
        os.close(entered_r)
        os.close(entered_w)
    assert settings["hostname_there"] is True
    assert settings["netns"].startswith("/proc/self/fd/")


def test_a_create_that_never_came_answers_nothing_and_the_child_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_setup(
        eng: Any, row: Any, pid: int, stack: ExitStack, netns: str = "", before_files: Any = None
    ) -> dict[str, Any]:
        before_files()  # raises: the monitor gave up before the create
        return {}

    monkeypatch.setattr(earlynet, "setup", fake_setup)
    monkeypatch.setattr(earlynet, "_new_netns", lambda: os.open(os.devnull, os.O_RDONLY))
    early = earlynet.EarlySetup(None, None)  # type: ignore[arg-type]
    child = early.pid
    early.close()  # the monitor's failure path: pipes closed, child reaped
    assert early.pid == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # reaped by close(), not left running


def test_a_child_that_died_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from portique.errors import PortiqueError

    def dying_setup(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        os._exit(3)  # a crash in the network layer

    monkeypatch.setattr(earlynet, "setup", dying_setup)
    monkeypatch.setattr(earlynet, "_new_netns", lambda: os.open(os.devnull, os.O_RDONLY))
    early = earlynet.EarlySetup(None, None)  # type: ignore[arg-type]
    os.waitid(os.P_PID, early.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    with pytest.raises(PortiqueError) as exc:
        early.finish(4242)  # not a broken pipe: the child is gone before the pid
    assert "network set-up process died" in str(exc.value)
    assert exc.value.exit_code == 125
