"""`portique cp CONTAINER:SRC DEST` and `portique cp SRC CONTAINER:DEST`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--archive", action="store_true", help="archive mode (copy uid/gid)")
    parser.add_argument(
        "-L", "--follow-link", action="store_true", help="follow symbolic links in SRC"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress progress output")
    parser.add_argument("src")
    parser.add_argument("dest")


def run(eng: Engine, args: argparse.Namespace) -> int:
    """docker cp's failures exit 1 (a missing container: main's Docker wording)."""
    import sys

    from portique.errors import NoSuchObject, PortiqueError

    try:
        return _run(eng, args)
    except NoSuchObject:
        raise
    except PortiqueError as exc:
        sys.stderr.write(f"portique: {exc}\n")
        return 1


def _run(eng: Engine, args: argparse.Namespace) -> int:
    import sys

    from portique.engine import archives, containers, copy
    from portique.errors import InvalidArgument

    src_c, src = copy.parse_cp_arg(args.src)
    dst_c, dst = copy.parse_cp_arg(args.dest)
    if args.src == "-":
        src_c, src = "", "-"
    if args.dest == "-":
        dst_c, dst = "", "-"
    if bool(src_c) == bool(dst_c):
        raise InvalidArgument(
            "copying between containers or between host paths is not supported:"
            " one of SRC and DEST must be CONTAINER:PATH"
        )
    if dst == "-":
        # A tar stream of the container's path on stdout, as docker cp.
        archives.get_archive(eng, src_c, src or "/", sys.stdout.buffer, follow=args.follow_link)
        sys.stdout.buffer.flush()
        return 0
    if src == "-":
        archives.put_archive(eng, dst_c, dst or "/", sys.stdin.buffer, copy_uid_gid=args.archive)
        return 0
    row = containers.get(eng, src_c or dst_c)
    with copy.container_root(eng, row) as root:
        if src_c:
            copy.copy_out(root, src or "/", dst, owners=args.archive)
        else:
            owner = None
            user = str(row.config.get("Config", {}).get("User") or "")
            if args.archive and user:
                # Docker's copyUIDGID: the files become the container's user's.
                from portique.engine.userdb import lookup

                resolved = lookup(root, user)
                owner = (resolved.uid, resolved.gid)
            copy.copy_in(root, src, dst or "/", owner=owner)
    from portique.engine import events

    # What dockerd tells for the archive requests docker cp makes.
    events.container(eng, row, "archive-path" if src_c else "extract-to-dir")
    return 0
