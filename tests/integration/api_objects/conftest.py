"""Fixtures of the API object tests: one `portique serve` per module (its own
roots and socket, busybox imported), and a plain registry on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.api_server import ApiServer, start_api_server
from support.registry import Registry, start_registry


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ApiServer]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_api_")[:8]
    with start_api_server(tmp_path_factory.mktemp("apisrv"), name=name) as server:
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry"), mode="plain") as reg:
        yield reg
