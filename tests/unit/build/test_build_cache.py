"""build/cache.py: a step key -> the step's whole result, while its layer blobs exist."""

from __future__ import annotations

from pathlib import Path

from portique import db
from portique.build.cache import BuildCache, step_key
from portique.image.store import ContentStore


def test_step_keys_depend_on_every_part_and_its_order() -> None:
    assert step_key("p", "RUN x", ["a"]) == step_key("p", "RUN x", ["a"])
    assert step_key("p", "RUN x", ["a"]) != step_key("p", "RUN x", ["b"])
    assert step_key("a", "b") != step_key("b", "a")
    assert step_key("p", {"x": 1, "y": 2}) == step_key("p", {"y": 2, "x": 1})


def test_a_result_comes_back_while_its_layers_exist(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    conn = db.connect(tmp_path)
    try:
        cache = BuildCache(conn, store)
        digest = store.write_bytes(b"a layer")
        layers = [{"mediaType": "m", "digest": digest, "size": 7}]
        config = {"config": {"Env": ["A=1"]}, "history": []}
        assert cache.get("k") is None
        cache.put("k", config, layers)
        assert cache.get("k") == (config, layers)
        cache.put("k", {"config": {}}, layers)  # a later build of the same step wins
        assert cache.get("k") == ({"config": {}}, layers)
        store.delete(digest)
        assert cache.get("k") is None  # a row whose blobs are gone is ignored
        assert BuildCache(conn, store).get("k") is None  # migrating again is harmless
    finally:
        conn.close()
