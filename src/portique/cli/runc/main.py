"""`portique-runtime`: runc's command line over portique's runtime library.

containerd's runc shim (`BinaryName`), dockerd's `--add-runtime` and podman's
`--runtime` call runc with global flags first, then a verb:

    portique-runtime --root R --log L --log-format json create --bundle B ID

Verbs load lazily (one module per verb under `commands/`) so that `state`,
`kill` or `--version` pay only for what they use: a shim calls the runtime
several times per container, and interpreter start-up is our main cost.
Each verb module defines:

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace, ctx: Context) -> int

and the hot ones (create, start, run, state, kill, delete, exec, pause,
resume) their command line as data, OPTIONS and POSITIONALS
(cli/runc/fastargs.py): their common command lines are then parsed without
importing argparse, and only
anything else (--help, an error, an unusual spelling) goes through argparse
(cli/runc/fullparse.py), which words it.

Errors behave as runc's do: one line on stderr (and one JSON or text line in
`--log`), exit status 1; `run` and foreground `exec` exit with the
container's own status.
"""

from __future__ import annotations

import os
import sys

from portique import __version__
from portique.cli.runc.context import Context, RuntimeLog
from portique.cli.runc.fastargs import UsageError as UsageError

TYPE_CHECKING = False  # typing itself costs every call an import
if TYPE_CHECKING:
    import argparse
    from types import ModuleType
    from typing import NoReturn

    from portique.cli.runc.fullparse import ArgumentParser as ArgumentParser
    from portique.cli.runc.fullparse import HelpFormatter as HelpFormatter

# The OCI runtime-spec version this runtime implements (printed by --version).
SPEC_VERSION = "1.2.0"

# Verb -> module under portique.cli.runc.commands.
VERBS: dict[str, str] = {
    "create": "create",
    "start": "start",
    "run": "run",
    "state": "state",
    "kill": "kill",
    "delete": "delete",
    "exec": "exec_",
    "list": "list_",
    "ps": "ps",
    "pause": "pause",
    "resume": "pause",
    "spec": "spec",
    "features": "features",
    "events": "events",
    "update": "update",
    "checkpoint": "checkpoint",
    "restore": "checkpoint",
    "explain": "explain",
}

USAGE = """usage: portique-runtime [global options] command [command options] [arguments...]

An OCI runtime with runc's command line.

commands:
  create, start, run, state, kill, delete, exec, list, ps, pause, resume,
  spec, features, events, update, explain, checkpoint, restore (refused)

global options:
  --root PATH          state directory (default /run/portique-runtime; a user's:
                       $XDG_RUNTIME_DIR/portique-runtime)
  --log FILE           write errors (and --debug messages) to FILE
  --log-format FORMAT  text or json (default text)
  --debug              debug messages and tracebacks
  --systemd-cgroup     not supported: refused (`features` says systemd: false)
  --criu PATH          the criu binary checkpoint/restore would use
  --rootless VALUE     true, false or auto (default auto)
  -v, --version        print the version
  -h, --help           print this help
"""

DEFAULT_ROOT = "/run/portique-runtime"


def default_root() -> str:
    """/run/portique-runtime for root; an ordinary user's, as runc's rootless
    mode: $XDG_RUNTIME_DIR/portique-runtime, else /tmp/portique-runtime-UID."""
    uid = os.geteuid()
    if uid == 0:
        return DEFAULT_ROOT
    xdg = os.environ.get("XDG_RUNTIME_DIR") or ""
    if xdg.startswith("/"):
        return f"{xdg}/portique-runtime"
    return f"/tmp/portique-runtime-{uid}"


# Global flags that take a value (runc's spelling).
_VALUED = ("--root", "--log", "--log-format", "--criu", "--rootless")
_BOOLEAN = ("--debug", "--systemd-cgroup")

# Verbs that fork container processes. Started as a process (entry()), they
# first make sure the interpreter is one a container cannot rewrite
# (linux/selfexe.py), re-executing from a sealed copy when it is not.
FORKING_VERBS = frozenset({"create", "run", "exec"})


def version_text() -> str:
    return f"portique-runtime version {__version__}\nspec: {SPEC_VERSION}\n"


def parse_globals(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Split `argv` into the global flags (before the verb) and the rest.

    Accepts `--flag value`, `--flag=value` and, as urfave/cli does, a single
    dash (`-root value`).
    """
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in ("-h", "--help", "-v", "--version"):
            opts[name.lstrip("-")[0]] = True
            i += 1
            continue
        if not name.startswith("--"):
            name = "-" + name
        if name in _VALUED:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i + 1]
                i += 1
            opts[name[2:]] = value
        elif name in _BOOLEAN:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"invalid boolean value {value!r} for {name}")
            opts[name[2:]] = not eq or value.lower() in ("true", "1")
        else:
            raise UsageError(f"flag provided but not defined: {arg}")
        i += 1
    return opts, argv[i:]


def make_context(opts: dict[str, str | bool]) -> Context:
    log_format = str(opts.get("log-format", "text"))
    if log_format not in ("text", "json"):
        raise UsageError(f"invalid log format {log_format!r}: want text or json")
    rootless = str(opts.get("rootless", "auto")).lower()
    if rootless not in ("auto", "true", "false", "1", "0"):
        raise UsageError(f"invalid --rootless value {rootless!r}: want true, false or auto")
    log_path = opts.get("log")
    return Context(
        # Text, not Paths: pathlib costs every call ~4 ms (runtime/container.py).
        root=str(opts.get("root") or default_root()),
        log=RuntimeLog(
            str(log_path) if log_path else None,
            json_format=log_format == "json",
            debug=bool(opts.get("debug", False)),
        ),
        debug=bool(opts.get("debug", False)),
        rootless=rootless,
        criu=str(opts.get("criu") or "criu"),
    )


def load_verb(verb: str) -> ModuleType | None:
    name = VERBS.get(verb)
    if name is None:
        return None
    module: ModuleType = __import__(f"portique.cli.runc.commands.{name}", fromlist=["run"])
    return module


def parse_args(verb: str, module: ModuleType, args: list[str]) -> argparse.Namespace | int:
    """The verb's arguments: without argparse when the verb declares them and
    the command line is a common one, else argparse's (an int: the exit status
    of --help)."""
    options = getattr(module, "OPTIONS", None)
    if options is not None:
        from portique.cli.runc.fastargs import parse

        ns = parse(args, options, module.POSITIONALS)
        if ns is not None:
            return ns
    from portique.cli.runc.fullparse import parse_full

    return parse_full(verb, module, args)


def __getattr__(name: str) -> object:
    # The argparse classes live in fullparse.py (imported only when used).
    if name in ("ArgumentParser", "HelpFormatter"):
        from portique.cli.runc import fullparse

        return getattr(fullparse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None, *, protect: bool = False) -> int:
    """Run one command; `protect`: this is the whole process (see FORKING_VERBS)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Until --log is parsed, errors go to stderr only.
    ctx: Context | None = None
    try:
        opts, rest = parse_globals(argv)
        if opts.get("v"):
            sys.stdout.write(version_text())
            return 0
        if opts.get("h") or not rest or rest[0] == "help":
            sys.stdout.write(USAGE)
            return 0
        ctx = make_context(opts)
        if opts.get("systemd-cgroup"):
            raise UsageError(
                "--systemd-cgroup is not supported: portique-runtime manages cgroupfs "
                "directly (`portique-runtime features`: cgroup systemd false)"
            )
        verb, args = rest[0], rest[1:]
        if protect and verb in FORKING_VERBS:
            from portique.linux.selfexe import ensure_protected

            ensure_protected()
        module = load_verb(verb)
        if module is None:
            raise UsageError(f"no such command: {verb}")
        ns = parse_args(verb, module, args)
        if isinstance(ns, int):  # --help
            return ns
        ns.verb = verb
        ctx.log.debug(f"{verb} {' '.join(args)}")
        return int(module.run(ns, ctx) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (`portique-runtime list | head -1`): say nothing
        # more, and keep the interpreter's final flush from complaining.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except Exception as exc:  # one line, never a traceback (runc's `fatal`)
        return report(exc, ctx)


def report(exc: BaseException, ctx: Context | None) -> int:
    """The error as one line: first to `--log` (containerd's shim reads the
    last error from it), then to stderr, which may be unwritable: under the
    shim a pod sandbox's stdio is /dev/null opened read-only, and a failed
    write there must not lose the log entry or the exit status."""
    from portique.errors import PortiqueError

    if isinstance(exc, OSError) and exc.strerror:
        # "[Errno 2] No such file or directory: 'x'" -> "x: no such file or directory"
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        message = f"{exc.filename}: {reason}" if exc.filename else reason
    elif isinstance(exc, (UsageError, PortiqueError, OSError)):
        message = str(exc)
    else:
        # A bug: still one line, the traceback only with --debug.
        message = f"internal error: {type(exc).__name__}: {exc}"
    if ctx is not None:
        ctx.log.error(message)
    debug = ctx.debug if ctx is not None else "--debug" in sys.argv[1:2]
    try:
        if debug:
            import traceback

            traceback.print_exception(exc)
        sys.stderr.write(f"portique-runtime: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return 1


def entry() -> NoReturn:
    """main() as the whole process (the launcher, `python -m`): exit without
    the interpreter's finalisation.

    Tearing down every module and object costs 5-10 ms of each call and
    frees nothing the kernel does not: the runtime's files are closed by
    `with` blocks, its log is written with os.write, and no thread runs.
    Only the buffered standard streams need flushing.
    """
    try:
        code = main(protect=True)
    except BaseException:  # main() reports its errors; this is the last guard
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can be said
    os._exit(code)


if __name__ == "__main__":
    entry()
