"""Markers follow the directory: tests/integration is root-only, tests/unit is pure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if HERE / "integration" in path.parents:
            item.add_marker(pytest.mark.root)


@pytest.fixture(autouse=True)
def _root_tests_need_root(request: pytest.FixtureRequest) -> None:
    # A root test run without root fails rather than skipping: a test skipped
    # by default would hide that nothing was checked.
    if request.node.get_closest_marker("root") is not None:
        assert os.geteuid() == 0, "integration tests need root (run them with sudo)"
