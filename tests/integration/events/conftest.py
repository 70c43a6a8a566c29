"""An engine root with a busybox image (from Debian's busybox-static), a CLI
runner, and a reader of a streaming `portique events` (issue 13, items 2 and 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.engine_cli import Portique, busybox_engine
from support.events_cli import Stream


@pytest.fixture(scope="session")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    with busybox_engine(tmp_path_factory.mktemp("events"), "events") as p:
        yield p


@pytest.fixture
def stream(pq: Portique) -> Iterator[Callable[..., Stream]]:
    made: list[Stream] = []

    def start(*args: str) -> Stream:
        s = Stream(pq, *args)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()
