"""Fixtures of the warm fork-server's tests: an engine root with a busybox image,
and `portique` runners for the same root with the server (`warm`) and without
(`cold`, PORTIQUE_WARM=off)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar
from support.warm import Modes


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Modes]:
    base = tmp_path_factory.mktemp("warm")
    with engine(base, f"pq-warm-{os.getpid()}") as pq:
        env = {k: v for k, v in pq.env.items() if not k.startswith("PORTIQUE_WARM")}
        warm = Portique(env, pq.root, pq.run_root)
        cold = Portique(dict(env, PORTIQUE_WARM="off"), pq.root, pq.run_root)
        cold.ok("import", "--change", 'CMD ["/bin/sh"]', str(image_tar(base)), "busybox:latest")
        m = Modes(warm, cold)
        m.start()
        try:
            yield m
        finally:
            m.stop()
