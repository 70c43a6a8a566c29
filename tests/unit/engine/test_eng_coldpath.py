"""The cold start path's pieces: the monitor forked before the create, and what
the paths a start and a monitor's clean-up walk do not import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import portique
from portique.engine import lifecycle
from portique.errors import PortiqueError


def _imported_after(code: str) -> set[str]:
    root = os.path.dirname(os.path.dirname(portique.__file__))
    probe = f"import sys; sys.path.append(sys.argv[1]); {code}; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, root], capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def test_a_monitors_clean_up_loads_no_spec_makers() -> None:
    # What a monitor imports after its container exited (monitor.main ->
    # lifecycle.cleanup_after_exit): not the modules that build a bundle.
    mods = _imported_after(
        "from portique.engine import bundle, lifecycle;"
        "from portique.engine.lifecycle import cleanup_after_exit, finish_removal, remove_files"
    )
    for heavy in ("portique.engine.config", "portique.engine.options", "portique.engine.volumes",
                  "portique.engine.containers", "dataclasses"):  # fmt: skip
        assert heavy not in mods, heavy


def test_network_none_loads_no_network_layer_types() -> None:
    config = {"HostConfig": {"NetworkMode": "none"}, "Config": {}}
    mods = _imported_after(
        f"from portique.engine import network;assert network.requests_of({config!r}) == []"
    )
    assert "portique.network.types" not in mods
    assert "dataclasses" not in mods


def test_an_early_monitor_starts_only_what_it_is_told(tmp_path: Path) -> None:
    from portique.engine import prefork
    from portique.engine.engine import Engine

    eng = Engine(tmp_path / "root", tmp_path / "run")
    forked = prefork.fork_early(eng, hold=False)
    assert forked is not None
    cid = "d" * 64
    eng.paths(cid).run_dir.mkdir(parents=True)
    # No such row: the monitor says so on its status line, as a late one would.
    with pytest.raises(PortiqueError, match="was removed"):
        lifecycle.launch(eng, cid, forked=forked)
    forked.cancel()  # after go: nothing left to end


def test_an_early_monitor_ends_when_no_container_comes(tmp_path: Path) -> None:
    from portique.engine import prefork
    from portique.engine.engine import Engine

    eng = Engine(tmp_path / "root", tmp_path / "run")
    forked = prefork.fork_early(eng, hold=False)
    assert forked is not None
    forked.cancel()
    forked.cancel()  # idempotent
    # It made nothing: no engine root, no run root.
    assert not (tmp_path / "root").exists()
    assert not (tmp_path / "run").exists()
