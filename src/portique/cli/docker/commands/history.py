"""`portique history [--no-trunc] [-q] [-H] [--format F] IMAGE` (also `image history`).

One row per entry of the image config's history, newest first, as Docker
prints it: the image id on the top row and `<missing>` below (the layers have
no ids of their own), the command that made the entry, and the unpacked size
of the layer it added (0B for entries that added none).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.image.images import ImageRecord, Images

TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
_CREATED_BY_WIDTH = 45


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("-H", "--human", type=_bool, default=True, nargs="?", const=True)
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("--format", help="format output using a Go template, 'table' or 'json'")


def _bool(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")


def layer_sizes(imgs: Images, record: ImageRecord) -> list[int]:
    """Unpacked size of each of the image's layers, bottom first."""
    with imgs.db.read() as c:
        rows = [
            c.execute("SELECT size FROM layers WHERE diff_id = ?", (diff_id,)).fetchone()
            for diff_id in record.layers
        ]
    return [int(r[0]) if r else 0 for r in rows]


def history_rows(imgs: Images, record: ImageRecord, *, no_trunc: bool, human: bool) -> list[Any]:
    from portique.cli.docker.commands.image import created_timestamp
    from portique.cli.docker.format import Record
    from portique.units import human_size, short_id, time_ago

    history = [h for h in record.config.get("history") or [] if isinstance(h, dict)]
    sizes = layer_sizes(imgs, record)
    if not history:
        # No history (some importers write none): one row per layer, as Docker shows.
        history = [{"created": record.created} for _ in record.layers]
    entries = []
    layer = 0
    for h in history:
        size = 0
        if not h.get("empty_layer"):
            size = sizes[layer] if layer < len(sizes) else 0
            layer += 1
        entries.append((h, size))
    rows = []
    for i, (h, size) in enumerate(reversed(entries)):
        created = created_timestamp(h.get("created"))
        created_by = str(h.get("created_by") or "")
        if not no_trunc and len(created_by) > _CREATED_BY_WIDTH:
            created_by = created_by[: _CREATED_BY_WIDTH - 3] + "..."
        ident = short_id(record.id, no_trunc=no_trunc) if i == 0 else "<missing>"
        rows.append(
            Record(
                ID=ident,
                CreatedSince=time_ago(created) if human else str(h.get("created") or ""),
                CreatedAt=str(h.get("created") or ""),
                CreatedBy=created_by,
                Size=human_size(size) if human else str(size),
                Comment=str(h.get("comment") or ""),
            )
        )
    return rows


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows

    imgs = eng.images
    record = imgs.resolve(args.image)
    rows = history_rows(imgs, record, no_trunc=args.no_trunc, human=args.human)
    if args.quiet:
        sys.stdout.write("".join(f"{r['ID']}\n" for r in rows))
        return 0
    sys.stdout.write(
        format_rows(
            args.format, rows, default=TABLE, headers=HEADERS, context="*image.historyContext"
        )
    )
    return 0
