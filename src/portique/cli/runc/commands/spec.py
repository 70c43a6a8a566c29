"""`spec [--bundle DIR] [--rootless]`: write a default config.json, as `runc spec`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from portique.cli.runc.context import Context
from portique.errors import Conflict, NotFound
from portique.termio import write_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", "-b", default=".", help="directory to write config.json into")
    parser.add_argument("--rootless", action="store_true", help="a spec for an unprivileged user")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from portique.runtime.default_spec import default_spec

    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise NotFound(f"bundle directory {bundle} does not exist")
    spec = default_spec(rootless=args.rootless)
    data = (json.dumps(spec, indent="\t") + "\n").encode()
    path = bundle / "config.json"
    # O_EXCL: never overwrite a config someone wrote (runc refuses too), and
    # never follow a symlink planted at that name.
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644
        )
    except FileExistsError:
        raise Conflict(f"{path} already exists: remove it first") from None
    try:
        write_all(fd, data)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return 0
