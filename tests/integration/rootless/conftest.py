"""Fixtures of the rootless tests: an engine of `portique-test` (a subordinate
range) and one of `portique-nosub` (none), each with busybox imported from
Debian's busybox-static, and a root engine of the test's own for side-by-side
checks (support/rootless_cli.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.rootless_cli import NOSUB_USER, TEST_USER, UserPortique, busybox_tar


def _engine(user: str, tag: str, **kw: bool) -> UserPortique:
    upq = UserPortique.make(user, tag, **kw)
    tar = busybox_tar(upq.base)
    upq.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest")
    return upq


@pytest.fixture(scope="session")
def upq() -> Iterator[UserPortique]:
    """portique-test's engine (newuidmap: the user and 65536 subordinate ids)."""
    engine = _engine(TEST_USER, "test")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def nosub() -> Iterator[UserPortique]:
    """portique-nosub's engine: a single-id mapping."""
    engine = _engine(NOSUB_USER, "nosub")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def root_pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    """A root engine of the test's own (containers with --network none only)."""
    base = tmp_path_factory.mktemp("rootengine")
    run_root = Path(f"/run/pqr-root-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(run_root))
    p = Portique(env, base / "root", run_root)
    p.ok("import", "--change", 'CMD ["/bin/sh"]', str(busybox_tar(base)), "busybox:latest")
    yield p
    ids = p.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        p("rm", "-f", *ids, timeout=120)
    from portique.network.networks import Networks

    nets = Networks(base / "root", run_root=run_root)
    try:
        nets.destroy()  # its nftables tables (made at its first start)
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(run_root)], check=False)
