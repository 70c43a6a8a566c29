"""Fixtures for the runtime core tests: a Runtime with a private state root,
and a check after each test that it left no state, cgroup or mount behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.runtime import Runtime
from portique.runtime.container import SECCOMP_CACHE


def _our_mounts(marker: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if marker in line]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    state_root = tmp_path / "state"
    runtime = Runtime(state_root)
    yield runtime
    # Whatever a test left running is removed, then nothing may remain.
    for s in runtime.list():
        runtime.delete(s.id, force=True)
    # The compiled seccomp filters are a cache the runtime keeps, not state.
    assert not state_root.exists() or not [
        p for p in state_root.iterdir() if p.name != SECCOMP_CACHE
    ]
    assert _our_mounts(str(tmp_path)) == []
    assert _our_cgroups() == []


def _our_cgroups() -> list[Path]:
    prefix = f"rt-{os.getpid()}-"
    root = Path("/sys/fs/cgroup")
    found = [*root.glob("*/portique/*"), *root.glob("portique/*")]  # v1 and v2 layouts
    return [p for p in found if p.name.startswith(prefix)]
