"""`portique logout [SERVER]`: forget the stored credentials of a registry."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.image.credentials import config_key, normalize_server, remove_credentials

    host = normalize_server(args.server)
    shown = config_key(host)
    if remove_credentials(host):
        sys.stdout.write(f"Removing login credentials for {shown}\n")
    else:
        sys.stdout.write(f"Not logged in to {shown}\n")
    return 0
