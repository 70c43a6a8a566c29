"""Which images something needs, and removing those nothing does (the step
images a build leaves: engine/buildcache.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from portique import journal
from portique.image.metadata import ImageDB, LayerRow

if TYPE_CHECKING:
    from portique.image.images import Images

_MAX_PARENT_CHAIN = 1000


def needed(images: Images, also: set[str] | None = None) -> set[str]:
    """Images something needs: named (a tag or a digest), used by a container,
    in `also`, and every image they descend from (the parents a build left)."""
    with images.db.read() as c:
        parents = dict(c.execute("SELECT id, parent FROM images").fetchall())
        roots = {r[0] for r in c.execute("SELECT image_id FROM image_tags")}
        roots |= {r[0] for r in c.execute("SELECT image_id FROM image_digests")}
        roots |= {r[0] for r in c.execute("SELECT image_id FROM image_users")}
    roots |= also or set()
    out: set[str] = set()
    for image_id in roots:
        current: str | None = image_id
        for _ in range(_MAX_PARENT_CHAIN):
            if current is None or current in out or current not in parents:
                break
            out.add(current)
            current = parents[current]
    return out


def remove_unneeded(images: Images, ids: Sequence[str]) -> tuple[list[str], int]:
    """Delete those of `ids` that have no name, no container and no child
    (children first: a chain of build steps goes whole); (deleted, bytes)."""
    deleted: list[str] = []
    doomed: list[tuple[list[LayerRow], list[str]]] = []
    from portique.image.images import journal_purge

    journal.ensure(images.db.conn)
    with images.db.write() as c:
        todo = [i for i in dict.fromkeys(ids)]
        progress = True
        while todo and progress:
            progress = False
            for image_id in list(todo):
                if c.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                    todo.remove(image_id)
                    continue
                tags, digests = ImageDB.refs(c, image_id)
                if tags or digests or ImageDB.users(c, image_id):
                    todo.remove(image_id)
                    continue
                if ImageDB.children(c, image_id):
                    continue  # maybe once its children in `todo` are gone
                doomed.append(ImageDB.delete_image(c, image_id))
                deleted.append(image_id)
                todo.remove(image_id)
                progress = True
        entry = journal_purge(c, "prune", doomed)
    return deleted, images._purge(doomed, entry)


__all__ = ["needed", "remove_unneeded"]
