"""Fixtures for driving the portique-runtime binary with a private state root."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.rtcli_bundle import RuntimeCLI, make_bundle


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(tmp_path / "state", tmp_path / "runtime.log")
    yield cli
    # Whatever a test left running goes, so no process outlives its test.
    with contextlib.suppress(subprocess.TimeoutExpired, AssertionError):
        ids = cli("list", "-q", check=False).stdout.split()
        for cid in ids:
            cli("delete", "--force", cid, check=False)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path) -> Callable[..., Path]:
    """bundle(args..., name=..., terminal=..., edit=...) -> a bundle directory."""
    counter = iter(range(1000))

    def make(*args: str, name: str | None = None, **kw: Any) -> Path:
        dest = tmp_path / (name or f"bundle{next(counter)}")
        return make_bundle(dest, busybox_rootfs, args or ("sleep", "60"), **kw)

    return make


@pytest.fixture
def watched(tmp_path: Path, busybox_rootfs: Path) -> tuple[str, ...]:
    """Trees where a mount leaked by the runtime would show up on the host."""
    return (str(tmp_path), str(busybox_rootfs), "/sys/fs/cgroup", "/proc", "/dev")
