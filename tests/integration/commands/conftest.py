"""An engine root with a busybox image (from Debian's busybox-static) and a CLI
runner, for the tests of the verbs of issue 13 (commit, diff, update, cp,
build from stdin, repeated layers, ...)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.engine_cli import Portique, busybox_engine


@pytest.fixture(scope="session")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    with busybox_engine(tmp_path_factory.mktemp("cmds"), "cmds") as p:
        yield p
