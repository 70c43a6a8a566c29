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
    from portique.engine import containers, copy
    from portique.errors import InvalidArgument

    src_c, src = copy.parse_cp_arg(args.src)
    dst_c, dst = copy.parse_cp_arg(args.dest)
    if bool(src_c) == bool(dst_c):
        raise InvalidArgument(
            "copying between containers or between host paths is not supported: one of SRC and DEST must be CONTAINER:PATH"
        )
    if src == "-" or dst == "-":
        raise InvalidArgument("tar streams on stdin/stdout are not supported by cp yet")
    row = containers.get(eng, src_c or dst_c)
    with copy.container_root(eng, row) as root:
        if src_c:
            copy.copy_out(root, src or "/", dst)
        else:
            copy.copy_in(root, src, dst or "/")
    return 0
