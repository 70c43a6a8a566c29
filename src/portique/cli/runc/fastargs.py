"""The hot verbs' options, declared once: argparse reads them, and so does a
parser that needs no argparse.

containerd's shim runs `create`, `start`, `state`, `kill`, `delete` and
`exec` as a new interpreter each, and importing argparse (with re, gettext
and, through gettext, locale) costs ~5 ms of every call. A verb module that
declares its command line as OPTIONS and POSITIONALS gets both:

- `add_options(parser, OPTIONS)`, for the full parser (--help, errors,
  anything unusual): the same add_argument calls as written by hand;
- `parse(argv, OPTIONS, POSITIONALS)`: the common spellings only, giving
  the very namespace argparse would, or None for anything else (an
  abbreviation, bundled short flags, `-bVALUE`, a `--`, a value or an id
  that starts with a dash, a bad number, too few or too many positionals,
  --help): the caller then runs argparse, which parses it or says what is
  wrong in its own words, with its own exit status.

tests/unit/cli/runc/test_rtcli_fastargs.py compares the two on a table of
command lines.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs the entry point an import
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Option kinds, as argparse spells them.
FLAG = "flag"  # action="store_true"
TEXT = "text"  # one value
INT = "int"  # one value, type=int
APPEND = "append"  # action="append"
APPEND_INT = "append_int"  # action="append", type=int

# Positional kinds: exactly one, an optional one (nargs="?"), or every
# remaining argument (nargs=argparse.REMAINDER).
ONE = "one"
OPTIONAL = "optional"
REMAINDER = "remainder"


class UsageError(Exception):
    """A command line runc would reject with "Incorrect Usage"."""


class Option:
    """One option: its spellings (the first long one names its dest)."""

    __slots__ = ("default", "dest", "help", "kind", "names")

    def __init__(
        self, *names: str, kind: str = FLAG, default: object = None, help: str = ""
    ) -> None:
        self.names = names
        self.kind = kind
        self.dest = names[0].lstrip("-").replace("-", "_")
        if default is None and kind == FLAG:
            default = False
        self.default = default
        self.help = help


class Positional:
    __slots__ = ("default", "dest", "kind", "metavar")

    def __init__(
        self, dest: str, kind: str = ONE, *, default: object = None, metavar: str = ""
    ) -> None:
        self.dest = dest
        self.kind = kind
        self.default = default
        self.metavar = metavar


def flag(*names: str, help: str, default: bool | None = False) -> Option:
    """store_true; `default=None` for a flag whose absence must be told apart."""
    opt = Option(*names, kind=FLAG, help=help)
    opt.default = default
    return opt


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """The add_argument calls for `options`, in their order."""
    for o in options:
        kwargs: dict[str, object] = {"default": o.default, "help": o.help}
        if o.kind == FLAG:
            kwargs["action"] = "store_true"
        if o.kind in (APPEND, APPEND_INT):
            kwargs["action"] = "append"
        if o.kind in (INT, APPEND_INT):
            kwargs["type"] = int
        parser.add_argument(*o.names, **kwargs)  # type: ignore[arg-type]


def add_positionals(parser: argparse.ArgumentParser, positionals: Sequence[Positional]) -> None:
    import argparse

    for p in positionals:
        kwargs: dict[str, object] = {}
        if p.metavar:
            kwargs["metavar"] = p.metavar
        if p.kind == OPTIONAL:
            kwargs.update(nargs="?", default=p.default)
        elif p.kind == REMAINDER:
            kwargs["nargs"] = argparse.REMAINDER
        parser.add_argument(p.dest, **kwargs)  # type: ignore[arg-type]


class Namespace:
    """What argparse.Namespace is to the verbs: attributes, compared by value."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"Namespace({inner})"

    __hash__ = None  # type: ignore[assignment]


def parse(
    argv: Sequence[str], options: Sequence[Option], positionals: Sequence[Positional]
) -> argparse.Namespace | None:
    """The namespace argparse would make of `argv`, or None: let argparse parse it."""
    by_name = {name: o for o in options for name in o.names}
    values: dict[str, object] = {}
    for o in options:
        # append copies its default before adding (argparse's _copy_items).
        values[o.dest] = list(o.default) if isinstance(o.default, list) else o.default
    # Positionals before a REMAINDER; everything after them is the remainder.
    fixed = [p for p in positionals if p.kind != REMAINDER]
    rest = next((p for p in positionals if p.kind == REMAINDER), None)
    found: list[str] = []
    remainder: list[str] = []
    # argparse matches positionals one run of them at a time: after
    # `ID --all`, a second positional is refused (or lands elsewhere).
    option_after_positional = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return None  # argparse drops it here and there: its rules, not ours
        if rest is not None and len(found) == len(fixed):
            remainder = list(argv[i:])
            if "--" in remainder:
                return None
            break
        if not arg.startswith("-") or arg == "-":
            if arg == "-" or option_after_positional:
                return None
            found.append(arg)
            i += 1
            continue
        name, eq, text = arg.partition("=")
        opt = by_name.get(name)
        if opt is None or (eq and not name.startswith("--")):
            return None
        option_after_positional = bool(found)
        if opt.kind == FLAG:
            if eq:
                return None  # argparse: "ignored explicit argument"
            values[opt.dest] = True
            i += 1
            continue
        if not eq:
            # A lone "-" is a value to argparse (`--process -`: stdin).
            if i + 1 >= len(argv) or (argv[i + 1].startswith("-") and argv[i + 1] != "-"):
                return None
            text = argv[i + 1]
            i += 1
        value: object = text
        if opt.kind in (INT, APPEND_INT):
            try:
                value = int(text)
            except ValueError:
                return None
        if opt.kind in (APPEND, APPEND_INT):
            items = values[opt.dest]
            if not isinstance(items, list):
                return None
            items.append(value)
        else:
            values[opt.dest] = value
        i += 1
    required = [p for p in fixed if p.kind == ONE]
    if not len(required) <= len(found) <= len(fixed):
        return None
    for k, p in enumerate(fixed):
        values[p.dest] = found[k] if k < len(found) else p.default
    if rest is not None:
        values[rest.dest] = remainder
    return Namespace(**values)  # type: ignore[return-value]


__all__ = [
    "APPEND",
    "APPEND_INT",
    "FLAG",
    "INT",
    "ONE",
    "OPTIONAL",
    "REMAINDER",
    "TEXT",
    "Namespace",
    "Option",
    "Positional",
    "UsageError",
    "add_options",
    "add_positionals",
    "flag",
    "parse",
]
