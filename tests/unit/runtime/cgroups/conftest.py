"""Fixtures of the cgroup driver unit tests (defined in cgfake.py)."""

from __future__ import annotations

from support.cgfake import fake_v1, fake_v2, writes

__all__ = ["fake_v1", "fake_v2", "writes"]
