"""The client suites of `portique serve`: one private server per module (its
own roots and socket, busybox imported; support/api_server.py) and a plain
registry on 127.0.0.1 for pulls and pushes."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import pytest

from support.api_server import ApiServer, start_api_server
from support.registry import Registry, start_registry


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ApiServer]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_compat_")[:8]
    with start_api_server(tmp_path_factory.mktemp("apisrv"), name=name) as server:
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry"), mode="plain") as reg:
        yield reg


@pytest.fixture(autouse=True)
def _client_sockets_collected() -> Iterator[None]:
    """docker-py leaves the sockets of some streamed answers (an events stream
    it closed, a container's logs) for the garbage collector; collect them
    after each test, here, so their ResourceWarning is not raised in whatever
    later test the collector happens to run."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
