"""The compat suites drive portique through third-party clients; the host guard
fails a test that changed the host's /dev, mounts or /etc files."""

from __future__ import annotations

import pytest

from support.compat_images import CompatImages, make_compat_images
from support.host_guard import host_guard

__all__ = ["compat_images", "host_guard"]


@pytest.fixture(scope="session")
def compat_images(tmp_path_factory: pytest.TempPathFactory) -> CompatImages:
    """busybox and a pause image as docker-archives (support/compat_images.py)."""
    return make_compat_images(tmp_path_factory.mktemp("compat-images"))
