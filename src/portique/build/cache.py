"""The build cache: a step's key -> the complete result of that step.

A key is sha256 over the parent step's key, the instruction after variable
expansion, the build args in scope, and for COPY/ADD the content checksum of
the sources (build/builder.py makes them with `step_key`). The result is the
whole image config and layer list after the step, so a fully cached rebuild
runs nothing, writes no layer, and yields the very same image ID.

Rows live in the engine database, component "build":

    build_cache(key TEXT PRIMARY KEY, config TEXT, layers TEXT, created REAL,
                image_id TEXT, layer TEXT, used REAL)

`image_id` is the step's image (Docker's classic builder makes one per step,
untagged, the child of the previous step's: the ID `build` prints), `layer`
the diff_id of the layer the step added ('' for none), `used` when a build
last took the row, `result` 1 when its image is what a build gave (kept
by `builder prune`, tagged or not, like any image the user was handed). A row whose layer blobs are gone is ignored. The
recovery (engine/recovery.py) reads `layers` to keep the blobs a row names.
`system df`, `builder prune` and `system prune` see the rows through
engine/buildcache.py.
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
    """,
    """
    ALTER TABLE build_cache ADD COLUMN image_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE build_cache ADD COLUMN layer TEXT NOT NULL DEFAULT '';
    ALTER TABLE build_cache ADD COLUMN used REAL NOT NULL DEFAULT 0;
    ALTER TABLE build_cache ADD COLUMN result INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX build_cache_image ON build_cache(image_id);
    """,
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
        with db.transaction(self.conn):
            self.conn.execute("UPDATE build_cache SET used = ? WHERE key = ?", (time.time(), key))
        return json.loads(row["config"]), layers

    def put(
        self,
        key: str,
        config: dict[str, Any],
        layers: list[dict[str, Any]],
        *,
        image_id: str = "",
        layer: str = "",
    ) -> None:
        now = time.time()
        with db.transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_cache(key, config, layers, created, image_id, layer,"
                " used) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, json.dumps(config), json.dumps(layers), now, image_id, layer, now),
            )

    def mark_result(self, image_id: str) -> None:
        """The build's image: `builder prune` leaves it (and its steps) alone."""
        with db.transaction(self.conn):
            self.conn.execute("UPDATE build_cache SET result = 1 WHERE image_id = ?", (image_id,))

    def set_image(self, key: str, image_id: str) -> None:
        """Record the step's image (registered again after a prune took it)."""
        with db.transaction(self.conn):
            self.conn.execute("UPDATE build_cache SET image_id = ? WHERE key = ?", (image_id, key))


__all__ = ["MIGRATIONS", "BuildCache", "Result", "step_key"]
