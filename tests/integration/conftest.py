"""Shared fixtures for root tests: a busybox root filesystem built from Debian's
busybox-static, and a bundle maker."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.host_guard import host_guard
from support.rootfs import BUSYBOX, make_busybox_rootfs

# host_guard: autouse, fails a test that changed the host's /dev, mounts or /etc.
__all__ = ["BUSYBOX", "host_guard", "make_busybox_rootfs"]


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention busybox root; copy it before writing into it."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")
