"""Unit tests open no network socket: pytest-socket refuses every socket but a
unix one (and name resolution) for each test under tests/unit. A test that
needs the network belongs in tests/integration."""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket


@pytest.fixture(autouse=True)
def _no_network() -> None:
    # pytest-socket lifts the guard again after each test (its teardown hook).
    disable_socket(allow_unix_socket=True)
