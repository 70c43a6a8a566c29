"""Markers follow the directory: tests/integration is root-only, tests/unit is pure."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # The runtime refuses to fork a container process from an interpreter a
    # container could rewrite (portique/linux/selfexe.py), and the runtime
    # suites fork in this process. On setup.sh's read-only interpreter this is
    # one check; elsewhere (a venv setup.sh has not made, the cgroup v2 VM)
    # pytest re-executes from a sealed copy, here, where its output capture
    # is suspended and nothing has run yet.
    from portique.linux.selfexe import ensure_protected

    ensure_protected()
    if os.environ.get("PORTIQUE_WARM") == "auto":
        # The warm pass of scripts/test.sh: every `portique` a test starts goes
        # through its run root's warm server, started on demand (portique/warm);
        # the servers carry this mark, so that the session stops the ones it made.
        os.environ.setdefault(WARM_MARK, f"{os.getpid()}-{time.time_ns()}")


WARM_MARK = "PORTIQUE_TEST_WARM_SESSION"


def pytest_sessionfinish(session: pytest.Session) -> None:
    mark = os.environ.get(WARM_MARK)
    if mark and os.environ.get("PORTIQUE_WARM") == "auto":
        from support.warm import stop_marked_servers

        stop_marked_servers(f"{WARM_MARK}={mark}".encode())


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
