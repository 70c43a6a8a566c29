"""`portique`: Docker's command line, daemonless.

Commands load lazily: `portique run` imports only what `run` needs. A verb
`foo` lives in `portique.cli.docker.commands.foo` (a dash becomes an
underscore) and defines:

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int

Management groups (`image ls`, `container rm`, `volume create`, ...) map to a
module too: `image` -> commands/image.py, which builds its own sub-parsers.
ALIASES maps Docker's top-level shortcuts (`images` = `image ls`) onto them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from portique import __version__

# Docker's top-level shortcuts that are spelled differently from their module.
ALIASES: dict[str, list[str]] = {
    "images": ["image", "ls"],
    "rmi": ["image", "rm"],
}

# Verbs whose modules live under another name.
MODULES: dict[str, str] = {
    "ps": "ps",
    "list": "ps",
}

# Verbs that start container processes (also as `container VERB`). Started as
# a process (entry()), they first make sure the interpreter is one a container
# cannot rewrite (linux/selfexe.py); the runtime refuses to fork otherwise.
STARTS_CONTAINERS = frozenset({"run", "start", "restart", "exec", "build"})

USAGE = """usage: portique [OPTIONS] COMMAND [ARG...]

A container engine with Docker's commands. Run 'portique COMMAND --help' for more
information on a command.
"""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit 125, as Docker does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"portique: {message}\nSee '{self.prog} --help'.\n")
        raise SystemExit(125)


def load_command(verb: str) -> ModuleType | None:
    name = MODULES.get(verb, verb).replace("-", "_")
    if not name.isidentifier() or name.startswith("_"):
        return None
    try:
        return importlib.import_module(f"portique.cli.docker.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"portique.cli.docker.commands.{name}":
            return None
        raise


def _split_globals(argv: list[str]) -> tuple[list[str], list[str]]:
    """Consume global flags (--root, --runroot, --debug, -D, --version) before the verb."""
    globals_: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--root", "--runroot", "--host", "-H") and i + 1 < len(argv):
            globals_ += argv[i : i + 2]
            i += 2
        elif arg.startswith(("--root=", "--runroot=", "--host=")) or arg in (
            "--debug",
            "-D",
            "--version",
            "-v",
            "--help",
            "-h",
        ):
            globals_.append(arg)
            i += 1
        else:
            break
    return globals_, argv[i:]


def entry() -> int:
    """main() as the whole process (console script, `python -m portique`)."""
    return main(protect=True)


def main(argv: list[str] | None = None, *, protect: bool = False) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    globals_, rest = _split_globals(argv)
    if protect and starts_containers(rest):
        from portique.linux.selfexe import ensure_protected

        try:
            ensure_protected()
        except OSError as exc:
            return _fail(exc.strerror or str(exc), 125, debug=False)
    debug = False
    i = 0
    while i < len(globals_):
        g = globals_[i]
        if g in ("--version", "-v"):
            print(f"portique version {__version__}")
            return 0
        if g in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        if g in ("--debug", "-D"):
            debug = True
        elif g == "--root":
            os.environ["PORTIQUE_ROOT"] = globals_[i + 1]
            i += 1
        elif g.startswith("--root="):
            os.environ["PORTIQUE_ROOT"] = g.split("=", 1)[1]
        elif g == "--runroot":
            os.environ["PORTIQUE_RUNROOT"] = globals_[i + 1]
            i += 1
        elif g.startswith("--runroot="):
            os.environ["PORTIQUE_RUNROOT"] = g.split("=", 1)[1]
        i += 1
    if not rest:
        sys.stdout.write(USAGE)
        return 0
    verb, *args = rest
    if verb in ALIASES:
        verb, *prefix = ALIASES[verb]
        args = prefix + args
    module = load_command(verb)
    if module is None:
        sys.stderr.write(f"portique: '{verb}' is not a portique command.\nSee 'portique --help'.\n")
        return 125
    parser = ArgumentParser(prog=f"portique {verb}")
    module.add_arguments(parser)
    ns = parser.parse_args(args)
    return run_command(module, ns, debug=debug)


def starts_containers(rest: list[str]) -> bool:
    """True when the command line after the global flags may start a container."""
    if rest[:1] == ["container"]:
        rest = rest[1:]
    return bool(rest) and rest[0] in STARTS_CONTAINERS


def _fail(message: str, code: int, *, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    sys.stderr.write(f"portique: {message}\n")
    return code


def run_command(module: ModuleType, ns: argparse.Namespace, *, debug: bool) -> int:
    from sqlite3 import Error as DatabaseError

    from portique.errors import PortiqueError

    try:
        code = module.run(ns)
        return int(code or 0)
    except PortiqueError as exc:
        return _fail(str(exc), exc.exit_code, debug=debug)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (`portique ps | head`); nothing more to say.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except OSError as exc:
        return _fail(str(exc), 125, debug=debug)
    except DatabaseError as exc:
        # A locked or damaged portique.db: say which, never a traceback.
        return _fail(
            f"state database: {exc} (root {os.environ.get('PORTIQUE_ROOT', '/var/lib/portique')})",
            125,
            debug=debug,
        )


if __name__ == "__main__":
    raise SystemExit(entry())
