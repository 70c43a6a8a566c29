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
    from portique.engine.images import HistoryEntry

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


def history_rows(entries: list[HistoryEntry], *, no_trunc: bool, human: bool) -> list[Any]:
    from portique.cli.docker.format import Record
    from portique.engine.images import created_timestamp
    from portique.units import human_size, short_id, time_ago

    rows = []
    for h in entries:
        created_by = h.created_by
        if not no_trunc and len(created_by) > _CREATED_BY_WIDTH:
            created_by = created_by[: _CREATED_BY_WIDTH - 3] + "..."
        rows.append(
            Record(
                ID=short_id(h.id, no_trunc=no_trunc) if h.id else "<missing>",
                CreatedSince=time_ago(created_timestamp(h.created)) if human else h.created,
                CreatedAt=h.created,
                CreatedBy=created_by,
                Size=human_size(h.size) if human else str(h.size),
                Comment=h.comment,
            )
        )
    return rows


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows
    from portique.engine import images

    rows = history_rows(images.history(eng, args.image), no_trunc=args.no_trunc, human=args.human)
    if args.quiet:
        sys.stdout.write("".join(f"{r['ID']}\n" for r in rows))
        return 0
    sys.stdout.write(
        format_rows(
            args.format, rows, default=TABLE, headers=HEADERS, context="*image.historyContext"
        )
    )
    return 0
