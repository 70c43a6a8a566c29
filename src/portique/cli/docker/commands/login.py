"""`portique login [-u USER] [-p PASS | --password-stdin] [SERVER]`.

The credentials are checked against the registry's /v2/ (through its token
server when it uses one) before they are stored, base64-encoded, in Docker's
config.json.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from portique.cli.docker.commands.pull import add_registry_arguments

    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    parser.add_argument("-u", "--username", help="username")
    parser.add_argument("-p", "--password", help="password")
    parser.add_argument(
        "--password-stdin", action="store_true", help="take the password from stdin"
    )
    add_registry_arguments(parser)


def _prompt(label: str, secret: bool) -> str:
    import getpass

    if not sys.stdin.isatty():
        from portique.errors import InvalidArgument

        raise InvalidArgument(
            f"cannot perform an interactive login from a non-TTY device ({label.lower()} missing)"
        )
    if secret:
        return getpass.getpass(f"{label}: ")
    sys.stdout.write(f"{label}: ")
    sys.stdout.flush()
    return sys.stdin.readline().strip()


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.commands.pull import insecure_registries
    from portique.engine import registry
    from portique.errors import InvalidArgument
    from portique.image.credentials import normalize_server, store_credentials

    if args.password_stdin and args.password is not None:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    if args.password_stdin and not args.username:
        raise InvalidArgument("must provide --username with --password-stdin")
    if args.password is not None:
        sys.stderr.write(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
    host = normalize_server(args.server)
    username = args.username or _prompt("Username", secret=False)
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        password = _prompt("Password", secret=True)
    if not username:
        raise InvalidArgument("username is required")
    if not password:
        raise InvalidArgument("password is required")
    # Checked with exactly these credentials, not whatever the config file holds.
    registry.login(
        host, username, password, insecure=insecure_registries(), tls_verify=args.tls_verify
    )
    store_credentials(host, username, password)
    sys.stdout.write("Login Succeeded\n")
    return 0
