"""The compat suites drive portique through third-party clients; the host guard
fails a test that changed the host's /dev, mounts or /etc files."""

from __future__ import annotations

from support.host_guard import host_guard

__all__ = ["host_guard"]
