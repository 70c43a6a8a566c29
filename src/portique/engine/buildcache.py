"""The build cache as `system df`, `builder prune` and `system prune` see it.

The cache is build/cache.py's rows (a step's key -> its result and its
image) and what only they keep: the untagged images of the steps (Docker's
classic builder makes one per step) and their layers. A row is live while
its image exists; it is in use when its image is needed (named, used by a
container, or an ancestor of one of those: the steps of a tagged build),
dangling otherwise (the steps of a stage no image kept, of a build whose
result was untagged or removed).

    records(eng)                    -> [CacheRecord]   (`system df [-v]`)
    prune(eng, all=False, filters)  -> (ids, bytes)    (`POST /build/prune`)

`prune` removes the dangling rows, with `all` every row, and then the step
images of those rows that nothing needs; images that tagged ones descend
from stay (they are images, and the tagged ones need them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portique.engine import filters as flt
from portique.oci.value import value

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["PRUNE_FILTERS", "CacheRecord", "prune", "records"]

PRUNE_FILTERS = ("until",)


@value
class CacheRecord:
    """One cache entry, as `system df -v` lists it and GET /system/df's BuildCache."""

    id: str  # the step key's hex
    image_id: str
    layer: str  # the diff_id of the layer the step added ("": none)
    size: int  # its unpacked bytes (0: none)
    created: float
    last_used: float
    in_use: bool
    shared: bool  # its layer is also in a named image


def _rows(eng: Engine) -> list[tuple[str, str, str, float, float]]:
    from portique.build.cache import COMPONENT, MIGRATIONS
    from portique.db import migrate

    conn = eng.db
    migrate(conn, COMPONENT, MIGRATIONS)
    return [
        (str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4] or r[3]))
        for r in conn.execute(
            "SELECT key, image_id, layer, created, used FROM build_cache ORDER BY created"
        )
    ]


def _needed(eng: Engine) -> set[str]:
    """The images the cache must not take: those something needs, and what
    builds gave (an untagged result is the user's image all the same)."""
    results = {
        str(r[0]) for r in eng.db.execute("SELECT image_id FROM build_cache WHERE result = 1")
    }
    return eng.images.needed(results)


def records(eng: Engine) -> list[CacheRecord]:
    """The live cache entries (whose step image is still here)."""
    from portique.image.metadata import ImageDB

    imgs = eng.images
    rows = _rows(eng)
    needed = _needed(eng)
    with imgs.db.read() as c:
        existing = {r[0] for r in c.execute("SELECT id FROM images")}
        named = {r[0] for r in c.execute("SELECT image_id FROM image_tags")}
        named_layers = {
            r[0]
            for r in c.execute(
                "SELECT DISTINCT diff_id FROM image_layers WHERE image_id IN"
                " (SELECT image_id FROM image_tags)"
            )
        }
        out = []
        for key, image_id, layer, created, used in rows:
            if image_id not in existing:
                continue
            row = ImageDB.layer_by_diff_id(c, layer) if layer else None
            out.append(
                CacheRecord(
                    id=key.removeprefix("sha256:"),
                    image_id=image_id,
                    layer=layer,
                    size=row.size if row is not None else 0,
                    created=created,
                    last_used=used,
                    in_use=image_id in needed,
                    shared=bool(layer) and layer in named_layers and image_id not in named,
                )
            )
    return out


def prune(
    eng: Engine, *, all: bool = False, filters: flt.Filters | None = None
) -> tuple[list[str], int]:
    """`POST /build/prune`: the cache rows that go (dead ones, dangling ones, with
    `all` every one; `until=` only those created before), their step images
    nothing needs, and the bytes given back."""
    from portique.engine.images import parse_until

    wanted = flt.check(filters, PRUNE_FILTERS)
    cutoffs = [parse_until(v) for v in wanted.get("until", [])]
    eng.recover(images=True)
    imgs = eng.images
    rows = _rows(eng)
    needed = _needed(eng)
    with imgs.db.read() as c:
        existing = {r[0] for r in c.execute("SELECT id FROM images")}
    doomed: list[tuple[str, str]] = []
    for key, image_id, _layer, created, _used in rows:
        if any(created >= cutoff for cutoff in cutoffs):
            continue
        live = image_id in existing
        if not live or all or image_id not in needed:
            doomed.append((key, image_id if live else ""))
    conn = eng.db
    from portique import db

    with db.transaction(conn):
        conn.executemany("DELETE FROM build_cache WHERE key = ?", [(k,) for k, _ in doomed])
    images = [i for _, i in doomed if i and i not in needed]
    _deleted, reclaimed = imgs.remove_unneeded(images)
    return [k.removeprefix("sha256:") for k, _ in doomed], reclaimed
