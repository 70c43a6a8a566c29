"""Issue 9, item 6: failed or killed pulls must not leave ingest files forever.

A registry that breaks every layer download (support/hostile_registry.py) used
to leave one lock file per layer and one partial per layer per image it made
up, for a day at least: a client pulling from it again and again filled its
disk. Now lock files go with the fetch, the next pull keeps only a few recent
partials (for a resumed download, which still works), and `system prune`
removes every abandoned one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from portique.image import store
from support import oci_build as ob
from support.crash_engine import Engine
from support.hostile_registry import HostileRegistry
from support.registry import Registry, RegistryProxy

# Large enough that half a layer blob is more than the client's first read (1 MiB).
LAYER = 4 << 20
# How many abandoned partials a pull keeps for a resume (the bound main lacked).
KEPT = getattr(store, "MAX_KEPT_PARTIALS", 8)


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    reg = HostileRegistry().start()
    yield reg
    reg.stop()


def ingest_files(e: Engine) -> tuple[list[str], list[str]]:
    names = sorted(os.listdir(e.root / "ingest"))
    return [n for n in names if n.endswith(".lock")], [n for n in names if n.endswith(".part")]


def test_failed_pulls_leave_no_lock_files_and_few_partials(
    engine: Engine, hostile: HostileRegistry
) -> None:
    pulls = KEPT + 4
    for i in range(pulls):
        hostile.add("bad", f"v{i}", ob.random_image(layers=1, layer_size=LAYER, seed=300 + i))
        p = engine("pull", "-q", f"{hostile.host}/bad:v{i}")
        assert p.returncode != 0
        assert "blob" in p.stderr
        locks, partials = ingest_files(engine)
        assert locks == [], f"after failed pull {i}"
        # The newest few are kept for a resume, plus this pull's own.
        assert len(partials) <= KEPT + 1, f"after failed pull {i}: {partials}"
    assert hostile.cut == pulls
    engine.ok("system", "prune", "-f")
    assert ingest_files(engine) == ([], [])


def test_a_failed_pulls_partial_is_still_resumed(
    engine: Engine, hostile: HostileRegistry, registry: Registry
) -> None:
    img = ob.random_image(layers=1, layer_size=LAYER, seed=350)
    hostile.add("bad", "v1", img)
    assert engine("pull", "-q", f"{hostile.host}/bad:v1").returncode != 0
    (layer,) = img.layers
    partial = f"{layer.digest.replace(':', '-')}.part"
    assert ingest_files(engine) == ([], [partial])
    kept = (engine.root / "ingest" / partial).stat().st_size
    assert 0 < kept < len(layer.blob)
    # Another (sound) registry with the same layer: the download resumes there.
    ob.push_image(registry, "faults/resume", "v1", img)
    proxy = RegistryProxy(registry.url).start()
    try:
        engine.ok("pull", "-q", f"{proxy.host}/faults/resume:v1")
        ranges = [r.headers.get("Range") for r in proxy.requests if layer.digest in r.path]
    finally:
        proxy.stop()
    assert ranges == [f"bytes={kept}-"]
    assert ingest_files(engine) == ([], [])
