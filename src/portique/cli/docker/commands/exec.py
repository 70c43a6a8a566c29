"""`portique exec [-i] [-t] [-d] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-d", "--detach", action="store_true", help="run the command in the background"
    )
    parser.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument(
        "-e", "--env", action="append", default=[], help="set environment variables"
    )
    parser.add_argument(
        "--env-file", action="append", default=[], help="read environment variables from a file"
    )
    parser.add_argument(
        "-u", "--user", default="", help="username or UID (format: <name|uid>[:<group|gid>])"
    )
    parser.add_argument(
        "-w", "--workdir", default="", help="working directory inside the container"
    )
    parser.add_argument(
        "--privileged", action="store_true", help="give extended privileges to the command"
    )
    parser.add_argument("--detach-keys", default="", help="key sequence for detaching")
    parser.add_argument("container")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import process_opts as opt
    from portique.engine.exec import ExecRequest, run_exec

    env: list[str] = []
    for path in args.env_file:
        env += opt.read_env_file(path)
    env += opt.parse_env(args.env)  # -e KEY copies KEY from our environment: the face's
    req = ExecRequest(
        argv=tuple(args.command),
        env=tuple(env),
        user=args.user,
        workdir=args.workdir,
        tty=args.tty,
        stdin=args.interactive,
        detach=args.detach,
        privileged=args.privileged,
    )
    return run_exec(eng, args.container, req)
