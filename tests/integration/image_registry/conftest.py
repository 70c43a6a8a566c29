"""Registries for the image tests: session-scoped ones (push under a unique repo name)
and a factory for fresh ones (tests that tamper with storage or count requests)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portique.image.credentials import Credentials
from portique.image.images import Images
from portique.image.registry.client import RegistryClient
from support.registry import Mode, Registry, start_registry

_names = itertools.count()


@pytest.fixture(scope="session")
def registry_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg"), "plain") as reg:
        yield reg


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg"), "basic") as reg:
        yield reg


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg"), "token") as reg:
        yield reg


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """start(mode="plain", **kw) -> a registry of this test alone (stopped after it)."""
    started: list[Registry] = []

    def start(mode: Mode = "plain", **kw: object) -> Registry:
        reg = start_registry(tmp_path, mode, **kw)  # type: ignore[arg-type]
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


@pytest.fixture
def repo_name() -> str:
    """A repository name no other test uses (registries are shared per session)."""
    return f"t{os.getpid()}-{next(_names)}"


@pytest.fixture
def images(tmp_path: Path) -> Iterator[Images]:
    imgs = Images(tmp_path / "root")
    yield imgs
    imgs.close()


def client_for(reg: Registry, **kw: object) -> RegistryClient:
    """A client that knows `reg`'s test credentials (and nothing from ~/.docker)."""
    entries = {reg.host: (reg.username, reg.password)} if reg.username and reg.password else {}
    return RegistryClient(credentials=Credentials(entries, {}), **kw)  # type: ignore[arg-type]


@pytest.fixture
def make_client() -> Callable[..., RegistryClient]:
    """make_client(reg, **kw): a RegistryClient with `reg`'s test credentials."""
    return client_for


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `portique` subprocesses: own root and Docker config dir."""
    return {
        **os.environ,
        "PORTIQUE_ROOT": str(tmp_path / "root"),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "no-auth.json"),
    }
