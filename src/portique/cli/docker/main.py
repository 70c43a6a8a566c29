"""`portique`: Docker's command line, daemonless.

Commands load lazily: `portique run` imports only what `run` needs. A verb
`foo` lives in `portique.cli.docker.commands.foo` (a dash becomes an
underscore) and defines:

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(eng: Engine, args: argparse.Namespace) -> int

`main` builds the one Engine of the command (engine/engine.py) from `--root`
and `--runroot` (else $PORTIQUE_ROOT and $PORTIQUE_RUNROOT, else
/var/lib/portique and /run/portique): the face is the only place that reads
them. Building it opens nothing.

Management groups (`image ls`, `container rm`, `volume create`, ...) map to a
module too: `image` -> commands/image.py, which builds its own sub-parsers.
ALIASES maps Docker's top-level shortcuts (`images` = `image ls`) onto them.
"""

from __future__ import annotations

import importlib
import os
import sys

from portique import __version__

TYPE_CHECKING = False  # typing's costs `portique --version` ~2 ms
if TYPE_CHECKING:
    import argparse
    from types import ModuleType

    from portique.engine.engine import Engine

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

# Verbs another face provides, loaded by name as the CLI's own (a face does not
# import a face): `serve` is the API face's (api/command.py).
FACE_VERBS: dict[str, str] = {
    "serve": "portique.api.command",
}

# Verbs that start container processes (also as `container VERB`). Started as
# a process (entry()), they first make sure the interpreter is one a container
# cannot rewrite (linux/selfexe.py); the runtime refuses to fork otherwise.
STARTS_CONTAINERS = frozenset({"run", "start", "restart", "exec", "build", "serve"})

# Management groups: `portique GROUP` and `GROUP --help` list their commands
# (cli/docker/catalog.py).
GROUPS = frozenset({"builder", "container", "image", "network", "system", "volume"})


# Where the warm server's socket is when neither --runroot nor $PORTIQUE_RUNROOT
# says (engine.engine.DEFAULT_RUNROOT, which the thin client does not import).
DEFAULT_RUNROOT = "/run/portique"


def load_command(verb: str) -> ModuleType | None:
    if verb in FACE_VERBS:
        return importlib.import_module(FACE_VERBS[verb])
    name = MODULES.get(verb, verb).replace("-", "_")
    if not name.isidentifier() or name.startswith("_"):
        return None
    try:
        return importlib.import_module(f"portique.cli.docker.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"portique.cli.docker.commands.{name}":
            return None
        raise


_VALUED = ("--root", "--runroot", "--host", "-H")
_FLAGS = ("--debug", "-D", "--version", "-v", "--help", "-h")


class GlobalFlagError(Exception):
    """A global flag the command line got wrong: one line, exit 125."""


def _split_globals(argv: list[str]) -> tuple[list[str], list[str]]:
    """Consume global flags (--root, --runroot, -H, --debug, -D, --version) before the verb."""
    globals_: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUED:
            if i + 1 >= len(argv):
                raise GlobalFlagError(f"flag needs an argument: {arg}")
            globals_ += argv[i : i + 2]
            i += 2
        elif arg.startswith(tuple(f"{flag}=" for flag in _VALUED if flag.startswith("--"))) or (
            arg in _FLAGS
        ):
            globals_.append(arg)
            i += 1
        else:
            break
    return globals_, argv[i:]


def _global_values(globals_: list[str]) -> tuple[dict[str, str], set[str]]:
    """(--root, --runroot and --host values as given, the last one winning; the
    plain flags). An empty value is a missing one."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(globals_):
        name, eq, value = globals_[i].partition("=")
        if name in _VALUED:
            if not eq:
                value = globals_[i + 1]
                i += 1
            if not value:
                raise GlobalFlagError(f"flag needs an argument: {name}")
            values["--host" if name == "-H" else name] = value
        else:
            flags.add(name)
        i += 1
    return values, flags


def make_engine(values: dict[str, str]) -> Engine:
    """The command's Engine: flags first, then the environment, then the defaults."""
    from pathlib import Path

    from portique.engine.engine import DEFAULT_ROOT, DEFAULT_RUNROOT, Engine

    default_root, default_runroot = DEFAULT_ROOT, DEFAULT_RUNROOT
    if os.geteuid() != 0:
        # An ordinary user's engine (engine/rootless.py): its own state.
        from portique.engine.rootless import default_roots

        default_root, default_runroot = default_roots(os.environ, os.geteuid())
    root = values.get("--root") or os.environ.get("PORTIQUE_ROOT") or str(default_root)
    runroot = values.get("--runroot") or os.environ.get("PORTIQUE_RUNROOT") or str(default_runroot)
    return Engine(Path(root), Path(runroot))


def enter_rootless(values: dict[str, str], argv: list[str], *, debug: bool) -> int:
    """An ordinary user's command runs inside its engine's user and mount
    namespaces (engine/rootless.py), made on first use: join them, then
    execute the command again there with the roots spelled out (an execve
    makes the namespace the owner of the process's memory, which the kernel
    checks before letting the engine open a container's /proc files)."""
    from portique.engine import rootless
    from portique.errors import PortiqueError

    try:
        eng = make_engine(values)
        rootless.prepare_dir(eng.root)
        rootless.enter(eng.runroot)
        os.environ["PORTIQUE_WARM"] = "off"  # see entry()
        # The engine runs nft and ip from /usr/sbin, which users' PATHs lack.
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":")
        os.environ["PATH"] = ":".join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])
        prefix = sys.orig_argv[: len(sys.orig_argv) - (len(sys.argv) - 1)]
        roots = ["--root", str(eng.root), "--runroot", str(eng.runroot)]
        os.execv(sys.executable, [sys.executable, *prefix[1:], *roots, *argv])
    except PortiqueError as exc:
        return _fail(str(exc), exc.exit_code, debug=debug)
    except OSError as exc:
        return _fail(str(exc), 125, debug=debug)


def entry() -> int:
    """main() as the whole process (launcher, console script, `python -m portique`):
    through the engine root's warm server when one answers (portique/warm), else
    in-process; then the exit, without the interpreter's finalisation when nothing
    needs it (exit_now)."""
    code = _entry()
    exit_now(code)
    return code


def _entry() -> int:
    mode = os.environ.get("PORTIQUE_WARM", "")
    # An ordinary user's command never goes to a warm server: root's is not
    # its engine, and its own engine lives in a user namespace the command
    # enters first (enter_rootless, which turns this path off for the re-run).
    if mode != "off" and os.geteuid() == 0:
        code = _through_warm_server(sys.argv, start=mode == "auto")
        if code is not None:
            return code
    return main(protect=True)


def exit_now(code: int) -> None:
    """End the process with `code` at once, skipping the interpreter's finalisation
    (tearing down every module and object: ~5 ms of each command, freeing
    nothing the kernel does not); return instead when it has work to do.

    It has when an atexit callback is registered (a library's clean-up) or a
    thread other than this one runs (the interpreter would wait for it), and
    when the standard streams cannot be flushed (a closed pipe: the
    interpreter's own flush then reports it as it always did). The engine's
    handles are closed by main() before this.
    """
    import atexit

    if atexit._ncallbacks() or _other_threads():
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the process started without that fd
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def _other_threads() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def _through_warm_server(argv: list[str], *, start: bool) -> int | None:
    """The exit code of the command run by a warm worker, or None (no server answered).

    `start` ($PORTIQUE_WARM=auto): when none answers, start one that exits after
    $PORTIQUE_WARM_IDLE seconds (default 60) without a command, and use it."""
    try:
        globals_, rest = _split_globals(argv[1:])
        values, _flags = _global_values(globals_)
    except GlobalFlagError:
        return None
    if rest[:1] in (["warm"], ["serve"]):
        # The warm server's own verb runs here, and so does the API server (a
        # long-lived process of its own, forking its workers itself).
        return None
    runroot = values.get("--runroot") or os.environ.get("PORTIQUE_RUNROOT") or DEFAULT_RUNROOT
    from portique.warm import client

    code = client.run(argv, runroot)
    if code is not None or not start:
        return code
    idle = os.environ.get("PORTIQUE_WARM_IDLE", "") or "60"
    if main(["--runroot", runroot, "warm", "start", "--idle", idle]) != 0:
        return None
    return client.run(argv, runroot)


def warm_handler(argv: list[str]) -> int:
    """What a warm worker runs (commands/warm.py): main, on the server's protected
    interpreter (the server checked it when it started)."""
    return main(argv)


def main(argv: list[str] | None = None, *, protect: bool = False) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        globals_, rest = _split_globals(argv)
        values, flags = _global_values(globals_)
    except GlobalFlagError as exc:
        sys.stderr.write(f"portique: {exc}\nSee 'portique --help'.\n")
        return 125
    if flags & {"--version", "-v"}:
        print(f"portique version {__version__}")
        return 0
    if flags & {"--help", "-h"} or not rest or rest == ["help"]:
        from portique.cli.docker.catalog import main_help

        sys.stdout.write(main_help())
        return 0
    if "--host" in values:
        # portique runs each command itself; the API socket is for API clients.
        sys.stderr.write(
            f"portique: -H/--host {values['--host']}: portique has no daemon to connect to,"
            " it runs each command itself (drop -H; to drive portique through the Docker"
            " Engine API, run `portique serve` and point the docker CLI at it)\n"
        )
        return 125
    if os.geteuid() != 0:
        return enter_rootless(values, argv, debug=bool(flags & {"--debug", "-D"}))
    if protect and starts_containers(rest):
        from portique.linux.selfexe import ensure_protected

        try:
            ensure_protected()
        except OSError as exc:
            return _fail(exc.strerror or str(exc), 125, debug=False)
    debug = bool(flags & {"--debug", "-D"})
    verb, *args = rest
    if args[:1] in ([], ["--help"], ["-h"]) and verb in GROUPS:
        from portique.cli.docker.catalog import group_help

        sys.stdout.write(group_help(verb))
        return 0
    if verb in ALIASES:
        verb, *prefix = ALIASES[verb]
        args = prefix + args
    module = load_command(verb)
    if module is None:
        sys.stderr.write(f"portique: '{verb}' is not a portique command.\nSee 'portique --help'.\n")
        return 125
    from portique.cli.docker.argparser import ArgumentParser

    parser = ArgumentParser(prog=f"portique {verb}")
    module.add_arguments(parser)
    ns = parser.parse_args(args)
    eng = make_engine(values)
    try:
        return run_command(module, eng, ns, debug=debug)
    finally:
        eng.close()


def starts_containers(rest: list[str]) -> bool:
    """True when the command line after the global flags may start a container."""
    if rest[:1] in (["container"], ["image"], ["builder"]):
        rest = rest[1:]
    return bool(rest) and rest[0] in STARTS_CONTAINERS


def _fail(message: str, code: int, *, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    sys.stderr.write(f"portique: {message}\n")
    return code


def run_command(module: ModuleType, eng: Engine, ns: argparse.Namespace, *, debug: bool) -> int:
    from sqlite3 import Error as DatabaseError

    from portique.cli.docker.each import report_missing
    from portique.errors import NoSuchObject, PortiqueError

    try:
        code = module.run(eng, ns)
        return int(code or 0)
    except NoSuchObject as exc:
        return report_missing(exc)  # Docker's words and status, as every verb's loop
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
        return _fail(f"state database: {exc} (root {eng.root})", 125, debug=debug)


if __name__ == "__main__":
    raise SystemExit(entry())
