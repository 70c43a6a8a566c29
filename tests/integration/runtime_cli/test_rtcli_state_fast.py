"""`state`'s fast path (cli/runc/quick.py) prints exactly what the full CLI
prints, through every status a container goes through, and leaves every
other case (errors included) to the full CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portique.cli.runc.quick import runc_state
from support.rtcli_bundle import RuntimeCLI, unique_id


def _full(rt: RuntimeCLI, *args: str) -> subprocess.CompletedProcess[str]:
    """The full CLI (main.py), which the fast path must agree with."""
    argv = rt.argv(*args)
    full = [sys.executable, "-m", "portique.cli.runc.main", *argv[argv.index("--root") :]]
    return subprocess.run(full, capture_output=True, text=True, timeout=60, check=False)


def _same(rt: RuntimeCLI, cid: str) -> str:
    fast = rt("state", cid)
    full = _full(rt, "state", cid)
    assert (fast.returncode, fast.stdout, fast.stderr) == (0, full.stdout, full.stderr)
    assert full.returncode == 0
    # ... and it was the fast path that answered.
    assert runc_state(str(rt.root), cid) == fast.stdout
    status: str = rt.state(cid)["status"]
    return status


def _annotate(spec: dict[str, Any]) -> None:
    spec["annotations"] = {"org.example/é": 'quote " and \\ and \t', "empty": ""}


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_every_status_reads_the_same_both_ways(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("create", "-b", str(bundle("sleep", "60", edit=_annotate)), cid)
    assert _same(rt, cid) == "created"
    rt("start", cid)
    assert _same(rt, cid) == "running"
    rt("pause", cid)
    assert _same(rt, cid) == "paused"
    rt("resume", cid)
    assert _same(rt, cid) == "running"
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    assert _same(rt, cid) == "stopped"
    rt("delete", cid)


def test_errors_are_the_full_clis(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    missing = rt("state", "nosuch", check=False)
    full = _full(rt, "state", "nosuch")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        full.returncode,
        full.stdout,
        full.stderr,
    )
    assert missing.returncode == 1
    assert "nosuch does not exist" in missing.stderr
    assert runc_state(str(rt.root), "nosuch") is None
    # An unreadable state.json goes to the full CLI too, which words it.
    cid = unique_id()
    rt("create", "-b", str(bundle("sleep", "60")), cid)
    state = rt.root / cid / "state.json"
    good = state.read_bytes()
    try:
        state.write_bytes(b"{not json")
        assert runc_state(str(rt.root), cid) is None
        bad = rt("state", cid, check=False)
        assert bad.returncode == 1
        assert "unreadable state" in bad.stderr
    finally:
        # The good state back, so the container can be deleted (init, cgroup)
        # whatever was asserted.
        state.write_bytes(good)
        rt("delete", "--force", cid)
    assert not os.path.exists(rt.root / cid)
