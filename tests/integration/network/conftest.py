"""Fixtures of the network integration tests (helpers in net_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.network.networks import Networks
from support.net_helpers import (
    Dummy,
    FakeUpstream,
    NetnsFactory,
    Procs,
    make_networks,
    teardown_networks,
)


@pytest.fixture
def make_netns() -> Iterator[NetnsFactory]:
    f = NetnsFactory()
    yield f
    f.cleanup()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.cleanup()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture
def nets(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Networks]:
    n = make_networks(tmp_path, upstream)
    yield n
    teardown_networks(n)


@pytest.fixture
def dummy() -> Iterator[Dummy]:
    d = Dummy()
    yield d
    d.close()
