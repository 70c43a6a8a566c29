"""Image metadata in the engine's SQLite database (component "image").

Schema version 1:

    layers(id INTEGER PRIMARY KEY AUTOINCREMENT,   -- snapshot dir: snapshots/<id>
           diff_id TEXT UNIQUE NOT NULL,            -- sha256 of the uncompressed tar
           size INTEGER NOT NULL,                   -- bytes of file content unpacked
           created REAL NOT NULL)
    layer_blobs(blob_digest TEXT PRIMARY KEY,       -- a (compressed) layer blob ...
                diff_id TEXT NOT NULL,              -- ... and what it unpacks to
                media_type TEXT NOT NULL, size INTEGER NOT NULL)
    images(id TEXT PRIMARY KEY,                     -- sha256:<config digest hex>
           manifest_digest TEXT NOT NULL, manifest_media_type TEXT NOT NULL,
           config TEXT NOT NULL,                    -- the config JSON, verbatim
           created TEXT NOT NULL, size INTEGER NOT NULL,
           architecture TEXT NOT NULL, os TEXT NOT NULL,
           parent TEXT,                             -- set by build/commit
           added REAL NOT NULL)
    image_layers(image_id -> images ON DELETE CASCADE, position INTEGER,
                 diff_id -> layers(diff_id), chain_id TEXT, PK(image_id, position))
    image_blobs(image_id -> images ON DELETE CASCADE, digest TEXT, PK(image_id, digest))
                                                    -- manifest, config, layer blobs
    image_tags(ref TEXT PRIMARY KEY,                -- normalised "docker.io/library/x:tag"
               image_id -> images ON DELETE CASCADE)
    image_digests(ref TEXT PRIMARY KEY,             -- "repo@sha256:..."
                  image_id -> images ON DELETE CASCADE)
    image_users(container_id TEXT PRIMARY KEY, image_id -> images)

A layer row exists only once its snapshot directory has been renamed into
place, and is deleted before the directory is: the database never names a
snapshot that is not complete. Reference counts are computed by query
(image_layers, image_blobs) inside the deleting transaction, never stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from portique import db
from portique.oci.value import value

COMPONENT: Final = "image"

MIGRATIONS: Final[Sequence[str]] = (
    """
    CREATE TABLE layers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        diff_id TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE layer_blobs (
        blob_digest TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest_digest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        config TEXT NOT NULL,
        created TEXT NOT NULL,
        size INTEGER NOT NULL,
        architecture TEXT NOT NULL,
        os TEXT NOT NULL,
        parent TEXT,
        added REAL NOT NULL
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id TEXT NOT NULL REFERENCES layers(diff_id),
        chain_id TEXT NOT NULL,
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_diff_id ON image_layers(diff_id);
    CREATE TABLE image_blobs (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (image_id, digest)
    );
    CREATE INDEX image_blobs_digest ON image_blobs(digest);
    CREATE TABLE image_tags (
        ref TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX image_tags_image ON image_tags(image_id);
    CREATE TABLE image_digests (
        ref TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX image_digests_image ON image_digests(image_id);
    CREATE TABLE image_users (
        container_id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id)
    );
    CREATE INDEX image_users_image ON image_users(image_id);
    """,
)


@value
class LayerRow:
    id: int
    diff_id: str
    size: int


@value
class ImageRow:
    id: str
    manifest_digest: str
    manifest_media_type: str
    config: dict[str, Any]
    created: str
    size: int
    architecture: str
    os: str
    parent: str | None
    tags: list[str]
    digests: list[str]
    diff_ids: list[str]
    chain_ids: list[str]
    layer_ids: list[int]


@value
class NewImage:
    id: str
    manifest_digest: str
    manifest_media_type: str
    config_json: str
    created: str
    architecture: str
    os: str
    diff_ids: Sequence[str]
    chain_ids: Sequence[str]
    blobs: Sequence[str]
    parent: str | None = None


class ImageDB:
    """Queries over the image tables; one connection, serialised by a lock.

    The lock makes the connection safe to share between the threads that
    unpack layers in parallel; other processes are kept apart by SQLite's own
    locking (BEGIN IMMEDIATE in every writing transaction).
    """

    def __init__(self, root: Path) -> None:
        self._lock = threading.RLock()
        self.conn = db.connect(root)
        db.migrate(self.conn, COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, db.transaction(self.conn) as c:
            yield c

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self.conn

    # -- layers ----------------------------------------------------------

    def layer_for_blob(self, blob_digest: str) -> LayerRow | None:
        with self.read() as c:
            row = c.execute(
                "SELECT l.id, l.diff_id, l.size FROM layer_blobs b"
                " JOIN layers l ON l.diff_id = b.diff_id WHERE b.blob_digest = ?",
                (blob_digest,),
            ).fetchone()
        return LayerRow(row[0], row[1], row[2]) if row else None

    @staticmethod
    def layer_by_diff_id(c: sqlite3.Connection, diff_id: str) -> LayerRow | None:
        row = c.execute(
            "SELECT id, diff_id, size FROM layers WHERE diff_id = ?", (diff_id,)
        ).fetchone()
        return LayerRow(row[0], row[1], row[2]) if row else None

    @staticmethod
    def insert_layer(c: sqlite3.Connection, diff_id: str, size: int) -> int:
        cur = c.execute(
            "INSERT INTO layers(diff_id, size, created) VALUES (?, ?, ?)",
            (diff_id, size, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    @staticmethod
    def map_blob(
        c: sqlite3.Connection, blob: str, diff_id: str, media_type: str, size: int
    ) -> None:
        c.execute(
            "INSERT INTO layer_blobs(blob_digest, diff_id, media_type, size) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(blob_digest) DO UPDATE SET diff_id = excluded.diff_id,"
            " media_type = excluded.media_type, size = excluded.size",
            (blob, diff_id, media_type, size),
        )

    def layer_ids(self) -> set[int]:
        with self.read() as c:
            return {r[0] for r in c.execute("SELECT id FROM layers")}

    # -- images ----------------------------------------------------------

    @staticmethod
    def insert_image(c: sqlite3.Connection, img: NewImage) -> None:
        """Insert `img` (kept as is when an image with its id exists)."""
        size = sum(
            c.execute("SELECT size FROM layers WHERE diff_id = ?", (d,)).fetchone()[0]
            for d in img.diff_ids
        )
        exists = c.execute("SELECT 1 FROM images WHERE id = ?", (img.id,)).fetchone()
        if exists:
            c.executemany(
                "INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES (?, ?)",
                [(img.id, b) for b in img.blobs],
            )
            return
        c.execute(
            "INSERT INTO images(id, manifest_digest, manifest_media_type, config, created,"
            " size, architecture, os, parent, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                img.id,
                img.manifest_digest,
                img.manifest_media_type,
                img.config_json,
                img.created,
                size,
                img.architecture,
                img.os,
                img.parent,
                time.time(),
            ),
        )
        c.executemany(
            "INSERT INTO image_layers(image_id, position, diff_id, chain_id) VALUES (?, ?, ?, ?)",
            [
                (img.id, i, d, ch)
                for i, (d, ch) in enumerate(zip(img.diff_ids, img.chain_ids, strict=True))
            ],
        )
        c.executemany(
            "INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES (?, ?)",
            [(img.id, b) for b in img.blobs],
        )

    @staticmethod
    def set_tag(c: sqlite3.Connection, ref: str, image_id: str) -> None:
        c.execute(
            "INSERT INTO image_tags(ref, image_id) VALUES (?, ?)"
            " ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
            (ref, image_id),
        )

    @staticmethod
    def set_digest(c: sqlite3.Connection, ref: str, image_id: str) -> None:
        c.execute(
            "INSERT INTO image_digests(ref, image_id) VALUES (?, ?)"
            " ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
            (ref, image_id),
        )

    def image_ids(self) -> list[str]:
        with self.read() as c:
            return [r[0] for r in c.execute("SELECT id FROM images ORDER BY created DESC, id")]

    def by_tag(self, ref: str) -> str | None:
        with self.read() as c:
            row = c.execute("SELECT image_id FROM image_tags WHERE ref = ?", (ref,)).fetchone()
        return row[0] if row else None

    def by_digest_ref(self, ref: str) -> str | None:
        with self.read() as c:
            row = c.execute("SELECT image_id FROM image_digests WHERE ref = ?", (ref,)).fetchone()
        return row[0] if row else None

    def by_manifest(self, repository: str, digest: str) -> str | None:
        """An image of `repository` whose manifest is `digest` (a repo digest not yet recorded)."""
        with self.read() as c:
            row = c.execute(
                "SELECT i.id FROM images i JOIN image_tags t ON t.image_id = i.id"
                " WHERE i.manifest_digest = ? AND t.ref LIKE ? ESCAPE '\\'",
                (digest, _like_prefix(repository + ":")),
            ).fetchone()
        return row[0] if row else None

    def by_id_prefix(self, prefix: str) -> list[str]:
        with self.read() as c:
            return [
                r[0]
                for r in c.execute(
                    "SELECT id FROM images WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                    (_like_prefix("sha256:" + prefix),),
                )
            ]

    def get(self, image_id: str) -> ImageRow | None:
        with self.read() as c:
            row = c.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                return None
            tags, digests = ImageDB.refs(c, image_id)
            layers = c.execute(
                "SELECT il.diff_id, il.chain_id, l.id FROM image_layers il"
                " JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id = ? ORDER BY il.position",
                (image_id,),
            ).fetchall()
        return ImageRow(
            id=row["id"],
            manifest_digest=row["manifest_digest"],
            manifest_media_type=row["manifest_media_type"],
            config=json.loads(row["config"]),
            created=row["created"],
            size=row["size"],
            architecture=row["architecture"],
            os=row["os"],
            parent=row["parent"],
            tags=tags,
            digests=digests,
            diff_ids=[r[0] for r in layers],
            chain_ids=[r[1] for r in layers],
            layer_ids=[r[2] for r in layers],
        )

    # -- users -----------------------------------------------------------

    def add_user(self, image_id: str, container_id: str) -> None:
        with self.write() as c:
            c.execute(
                "INSERT INTO image_users(container_id, image_id) VALUES (?, ?)"
                " ON CONFLICT(container_id) DO UPDATE SET image_id = excluded.image_id",
                (container_id, image_id),
            )

    def remove_user(self, image_id: str, container_id: str) -> None:
        with self.write() as c:
            c.execute(
                "DELETE FROM image_users WHERE container_id = ? AND image_id = ?",
                (container_id, image_id),
            )

    @staticmethod
    def refs(c: sqlite3.Connection, image_id: str) -> tuple[list[str], list[str]]:
        """The image's tags and its repository digests, sorted."""
        tags = [
            r[0]
            for r in c.execute(
                "SELECT ref FROM image_tags WHERE image_id = ? ORDER BY ref", (image_id,)
            )
        ]
        digests = [
            r[0]
            for r in c.execute(
                "SELECT ref FROM image_digests WHERE image_id = ? ORDER BY ref", (image_id,)
            )
        ]
        return tags, digests

    @staticmethod
    def users(c: sqlite3.Connection, image_id: str) -> list[str]:
        return [
            r[0]
            for r in c.execute(
                "SELECT container_id FROM image_users WHERE image_id = ? ORDER BY container_id",
                (image_id,),
            )
        ]

    @staticmethod
    def parent(c: sqlite3.Connection, image_id: str) -> str | None:
        row = c.execute("SELECT parent FROM images WHERE id = ?", (image_id,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def children(c: sqlite3.Connection, image_id: str) -> list[str]:
        return [r[0] for r in c.execute("SELECT id FROM images WHERE parent = ?", (image_id,))]

    # -- deletion --------------------------------------------------------

    @staticmethod
    def delete_image(c: sqlite3.Connection, image_id: str) -> tuple[list[LayerRow], list[str]]:
        """Delete the image row; return the layers and blobs nothing else uses.

        Their rows are deleted here too (before their files, see module doc).
        """
        diff_ids = [
            r[0]
            for r in c.execute("SELECT diff_id FROM image_layers WHERE image_id = ?", (image_id,))
        ]
        blobs = [
            r[0]
            for r in c.execute("SELECT digest FROM image_blobs WHERE image_id = ?", (image_id,))
        ]
        c.execute("DELETE FROM images WHERE id = ?", (image_id,))
        layers: list[LayerRow] = []
        for diff_id in dict.fromkeys(diff_ids):
            if c.execute(
                "SELECT 1 FROM image_layers WHERE diff_id = ? LIMIT 1", (diff_id,)
            ).fetchone():
                continue
            row = ImageDB.layer_by_diff_id(c, diff_id)
            if row is not None:
                c.execute("DELETE FROM layers WHERE id = ?", (row.id,))
                layers.append(row)
        gone_blobs = []
        for digest in blobs:
            if c.execute(
                "SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1", (digest,)
            ).fetchone():
                continue
            c.execute("DELETE FROM layer_blobs WHERE blob_digest = ?", (digest,))
            gone_blobs.append(digest)
        return layers, gone_blobs

    @staticmethod
    def unreferenced_layers(c: sqlite3.Connection, older_than: float) -> list[LayerRow]:
        return [
            LayerRow(r[0], r[1], r[2])
            for r in c.execute(
                "SELECT id, diff_id, size FROM layers WHERE created < ? AND NOT EXISTS"
                " (SELECT 1 FROM image_layers il WHERE il.diff_id = layers.diff_id)",
                (older_than,),
            )
        ]

    def referenced_blobs(self) -> set[str]:
        with self.read() as c:
            return {r[0] for r in c.execute("SELECT digest FROM image_blobs")}

    def usage(self) -> dict[str, int]:
        with self.read() as c:
            images = c.execute("SELECT count(*) FROM images").fetchone()[0]
            active = c.execute("SELECT count(DISTINCT image_id) FROM image_users").fetchone()[0]
            size = c.execute("SELECT coalesce(sum(size), 0) FROM layers").fetchone()[0]
            used = c.execute(
                "SELECT coalesce(sum(size), 0) FROM layers WHERE diff_id IN"
                " (SELECT il.diff_id FROM image_layers il JOIN image_users u"
                " ON u.image_id = il.image_id)"
            ).fetchone()[0]
        return {"images": images, "active": active, "size": size, "reclaimable": size - used}


def like_escape(s: str) -> str:
    """`s` as literal text in a LIKE pattern with ESCAPE '\\'."""
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(s: str) -> str:
    return like_escape(s) + "%"


__all__ = ["COMPONENT", "MIGRATIONS", "ImageDB", "ImageRow", "LayerRow", "NewImage", "like_escape"]
