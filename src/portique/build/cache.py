"""The build cache: a step's key -> the complete result of that step.

A key is sha256 over the parent step's key, the instruction after variable
expansion, the build args in scope, and for COPY/ADD the content checksum of
the sources (build/builder.py makes them with `step_key`). The result is the
whole image config and layer list after the step, so a fully cached rebuild
runs nothing, writes no layer, and yields the very same image ID.

Rows live in the engine database, component "build":

    build_cache(key TEXT PRIMARY KEY, config TEXT, layers TEXT, created REAL)

A row whose layer blobs are gone is ignored. The recovery
(engine/recovery.py) reads `layers` to keep the blobs a row names.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from portique import db

if TYPE_CHECKING:
    from portique.image.store import ContentStore

COMPONENT = "build"
MIGRATIONS = [
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        config TEXT NOT NULL,   -- the image config JSON after the step
        layers TEXT NOT NULL,   -- JSON list of OCI layer descriptors
        created REAL NOT NULL
    );
    """
]

# (image config, OCI layer descriptors bottom first), as JSON documents
Result = tuple[dict[str, Any], list[dict[str, Any]]]


def step_key(*parts: object) -> str:
    """The key of a step made of `parts` (JSON values; the parent's key among them)."""
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class BuildCache:
    def __init__(self, conn: sqlite3.Connection, store: ContentStore) -> None:
        self.conn = conn
        self.store = store
        db.migrate(conn, COMPONENT, MIGRATIONS)

    def get(self, key: str) -> Result | None:
        """The result recorded for `key`, if every layer blob it names is still here."""
        row = self.conn.execute(
            "SELECT config, layers FROM build_cache WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        layers = json.loads(row["layers"])
        if not all(self.store.has(d["digest"]) for d in layers):
            return None
        return json.loads(row["config"]), layers

    def put(self, key: str, config: dict[str, Any], layers: list[dict[str, Any]]) -> None:
        with db.transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_cache(key, config, layers, created) VALUES (?, ?, ?, ?)",
                (key, json.dumps(config), json.dumps(layers), time.time()),
            )


__all__ = ["MIGRATIONS", "BuildCache", "Result", "step_key"]
