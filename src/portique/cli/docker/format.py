"""Docker-style output: tables, `--format` templates, human sizes and times.

Shared by every listing verb (`images`, `ps`, `volume ls`, `inspect`, ...). It
reproduces what the docker CLI prints so that scripts written against Docker keep
working: go-units' sizes ("1.24MB", decimal units, three significant digits), its
durations ("2 hours ago"), text/tabwriter's column layout (minwidth 10, padding 3)
and a subset of Go's text/template with Docker's extra functions (json, join,
split, lower, upper, title, pad, truncate).

A listing verb builds one `dict[str, Any]` per row (keys are Docker's template
field names: ID, Repository, ...) and calls `format_rows`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from portique.errors import InvalidArgument

__all__ = [
    "Record",
    "Template",
    "format_rows",
    "human_duration",
    "human_size",
    "render_table",
    "short_id",
    "time_ago",
]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `precision` significant digits."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    text = f"{size:.{precision}g}"
    if "e" in text and i < len(_UNITS) - 1:
        # 999.95 rounds up to "1e+03": say "1kB" as a reader would.
        return f"{size / 1000.0:.{precision}g}{_UNITS[i + 1]}"
    return f"{text}{_UNITS[i]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 weeks"."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def time_ago(timestamp: float, now: float | None = None) -> str:
    """ "2 hours ago" for a Unix timestamp; Docker's CREATED column."""
    if timestamp <= 0:
        return "N/A"
    now = time.time() if now is None else now
    return f"{human_duration(max(0.0, now - timestamp))} ago"


def short_id(ident: str, *, no_trunc: bool = False) -> str:
    """Docker's short id: the first 12 hex digits, without the algorithm prefix."""
    if no_trunc:
        return ident
    _, _, hexpart = ident.rpartition(":")
    return hexpart[:12]


def render_table(rows: Sequence[Sequence[str]], *, minwidth: int = 10, padding: int = 3) -> str:
    """Lay out rows as Go's tabwriter does for Docker (minwidth 10, padding 3).

    Every cell but the last of its line is padded to its column's width; the
    last cell is written as is, so lines carry no trailing blanks.
    """
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            w = max(len(cell) + padding, minwidth)
            if i == len(widths):
                widths.append(w)
            elif w > widths[i]:
                widths[i] = w
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)


class Record(dict[str, Any]):
    """A row whose missing fields are template errors (a Go struct, not a map)."""


def format_rows(
    fmt: str | None,
    rows: Sequence[Mapping[str, Any]],
    *,
    default: str,
    headers: Mapping[str, str],
) -> str:
    """Render `rows` as Docker's `--format` would.

    `default` is the verb's built-in table template ("table {{.ID}}\\t..."),
    `headers` maps a field name to its column title. `fmt` may be None or
    "table" (the default table), "json" (one JSON object per line), "table TEMPLATE"
    or any other template (one line per row, no header).
    """
    if not fmt or fmt == "table":
        fmt = default
    if fmt == "json":
        return "".join(_json(Record(r)) + "\n" for r in rows)
    text = fmt.replace("\\t", "\t").replace("\\n", "\n")
    is_table = text.startswith("table")
    if is_table:
        text = text[len("table") :]
    text = text.strip(" ")
    tmpl = Template(text)
    if not is_table:
        return "".join(tmpl.execute(r) + "\n" for r in rows)
    header_row = _HeaderRow(headers)
    lines = [tmpl.execute(header_row)] + [tmpl.execute(r) for r in rows]
    cells = [line.split("\t") for chunk in lines for line in chunk.split("\n")]
    return render_table(cells)


class _HeaderRow(Record):
    """Executes a table template's header line: each field names its column."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__()
        self.headers = headers

    def __missing__(self, key: str) -> str:
        return self.headers.get(key, key.upper())

    def __contains__(self, key: object) -> bool:
        return True


# --- a subset of Go's text/template ------------------------------------------------


def _json(value: Any) -> str:
    # A row marshals like Docker's map of strings: keys sorted.
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, sort_keys=isinstance(value, Record)
    )


def go_string(value: Any) -> str:
    """Print a value as Go's fmt %v prints JSON-decoded data."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    return bool(value)


def _pad(s: Any, left: int, right: int) -> str:
    return " " * int(left) + go_string(s) + " " * int(right)


def _truncate(s: Any, n: int) -> str:
    text = go_string(s)
    return text[: int(n)]


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is None:
            return None
        try:
            value = value[int(key)] if isinstance(value, list) else value.get(key)
        except (IndexError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidArgument(f"template: error calling index: {exc}") from None
    return value


def _printf(fmt: str, *args: Any) -> str:
    out = []
    i = 0
    argi = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            verb = fmt[i + 1]
            i += 2
            if verb == "%":
                out.append("%")
                continue
            arg = args[argi] if argi < len(args) else None
            argi += 1
            if verb == "q":
                out.append(json.dumps(go_string(arg)))
            else:
                out.append(go_string(arg))
            continue
        out.append(ch)
        i += 1
    return "".join(out)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": lambda items, sep: sep.join(go_string(i) for i in (items or [])),
    "split": lambda s, sep: go_string(s).split(sep),
    "lower": lambda s: go_string(s).lower(),
    "upper": lambda s: go_string(s).upper(),
    "title": lambda s: go_string(s).title(),
    "pad": _pad,
    "truncate": _truncate,
    "index": _index,
    "len": lambda v: len(v or ()),
    "print": lambda *a: "".join(go_string(x) for x in a),
    "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    "printf": _printf,
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "not": lambda a: not _truthy(a),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
}


# Template nodes are NamedTuples rather than dataclasses: they are immutable
# values too, and cost a tenth of the import time on every listing command.
class _Field(NamedTuple):
    base: str  # "." (dot), "$" (root) or "$name"
    path: tuple[str, ...]


class _Literal(NamedTuple):
    value: Any


class _Call(NamedTuple):
    name: str
    args: tuple[Any, ...]  # operands: _Field | _Literal | _Pipeline


class _Pipeline(NamedTuple):
    decl: tuple[str, ...]  # variables declared by `$x :=` / `$k, $v :=`
    commands: tuple[Any, ...]  # each a _Call, or a single operand


class _Block(NamedTuple):
    kind: str  # "if", "range", "with"
    pipe: _Pipeline
    body: list[Any]
    orelse: list[Any]


_MAX_TEMPLATE = 64 * 1024


class Template:
    """A parsed Go template; `execute(data)` renders it.

    Supported: text, `{{.A.B}}`, `{{.}}`, `$`/`$var`, string/number/bool literals,
    function calls and pipelines (`{{.Names | join ","}}`), parentheses,
    `{{if}}`/`{{else}}`/`{{else if}}`, `{{range}}` (with `$k, $v :=`), `{{with}}`,
    `{{end}}`, and the `{{-`/`-}}` trim markers.
    """

    def __init__(self, text: str) -> None:
        if len(text) > _MAX_TEMPLATE:
            raise InvalidArgument("template: format is too long")
        self.text = text
        nodes, _ = self._parse(_lex(text), 0)
        self.nodes = nodes

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self._exec(self.nodes, data, {"$": data}, out)
        return "".join(out)

    # parsing
    def _parse(self, items: list[tuple[str, str]], pos: int) -> tuple[list[Any], int]:
        self._items = items
        nodes, pos, end = self._parse_list(pos)
        if end is not None:
            raise InvalidArgument(f"template: unexpected {{{{{end}}}}}")
        return nodes, pos

    def _parse_list(self, pos: int) -> tuple[list[Any], int, str | None]:
        """Parse nodes up to an `end`/`else` action, which is returned unconsumed-by-node."""
        nodes: list[Any] = []
        items = self._items
        while pos < len(items):
            kind, text = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(text)
                continue
            word, _, rest = text.partition(" ")
            if word in ("end", "else"):
                return nodes, pos, text
            if word in ("if", "range", "with"):
                block, pos = self._parse_block(word, rest, pos)
                nodes.append(block)
            elif not text.startswith("/*"):
                nodes.append(_parse_pipeline(_tokens(text)))
        return nodes, pos, None

    def _parse_block(self, word: str, rest: str, pos: int) -> tuple[_Block, int]:
        pipe = _parse_pipeline(_tokens(rest))
        body, pos, end = self._parse_list(pos)
        orelse: list[Any] = []
        if end is not None and end.startswith("else"):
            chained = end[len("else") :].strip()
            cword, _, crest = chained.partition(" ")
            if cword in ("if", "with"):
                # `else if X` is an `if X` in the else branch that shares our {{end}}.
                nested, pos = self._parse_block(cword, crest, pos)
                return _Block(word, pipe, body, [nested]), pos
            orelse, pos, end = self._parse_list(pos)
        if end != "end":
            raise InvalidArgument(f"template: missing {{{{end}}}} for {word}")
        return _Block(word, pipe, body, orelse), pos

    # execution
    def _exec(self, nodes: list[Any], dot: Any, vars_: dict[str, Any], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, _Pipeline):
                value = _eval_pipeline(node, dot, vars_)
                if not node.decl:
                    out.append("<no value>" if value is _MISSING else go_string(value))
            else:
                self._exec_block(node, dot, vars_, out)

    def _exec_block(self, node: _Block, dot: Any, vars_: dict[str, Any], out: list[str]) -> None:
        value = _eval_pipeline(_Pipeline((), node.pipe.commands), dot, vars_)
        if value is _MISSING:
            value = None
        if node.kind == "if":
            self._exec(node.body if _truthy(value) else node.orelse, dot, vars_, out)
        elif node.kind == "with":
            if _truthy(value):
                self._exec(node.body, value, vars_, out)
            else:
                self._exec(node.orelse, dot, vars_, out)
        else:
            if isinstance(value, Mapping):
                pairs = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, list | tuple):
                pairs = list(enumerate(value))
            elif value is None:
                pairs = []
            else:
                raise InvalidArgument(f"template: range can't iterate over {go_string(value)}")
            if not pairs:
                self._exec(node.orelse, dot, vars_, out)
            for key, item in pairs:
                scope = dict(vars_)
                if len(node.pipe.decl) == 1:
                    scope[node.pipe.decl[0]] = item
                elif len(node.pipe.decl) == 2:
                    scope[node.pipe.decl[0]] = key
                    scope[node.pipe.decl[1]] = item
                self._exec(node.body, item, scope, out)


_MISSING: Any = object()


def _lex(text: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s), applying `{{-` / `-}}` trims."""
    items: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            items.append(("text", text[pos:]))
            break
        chunk = text[pos:start]
        inner_start = start + 2
        if text.startswith("- ", inner_start):
            chunk = chunk.rstrip()
            inner_start += 1
        items.append(("text", chunk))
        end = _find_close(text, inner_start)
        inner = text[inner_start:end]
        pos = end + 2
        if inner.endswith(" -"):
            inner = inner[:-1]
            ws = len(text) - len(text[pos:].lstrip())
            pos = ws
        items.append(("action", inner.strip()))
    return [i for i in items if i != ("text", "")]


def _find_close(text: str, pos: int) -> int:
    quote = ""
    while pos < len(text):
        ch = text[pos]
        if quote:
            if ch == "\\" and quote == '"':
                pos += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in '"`':
            quote = ch
        elif text.startswith("}}", pos):
            return pos
        pos += 1
    raise InvalidArgument("template: unclosed action")


def _tokens(text: str) -> list[str]:
    toks: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()|,":
            toks.append(ch)
            i += 1
        elif ch == ":" and text.startswith(":=", i):
            toks.append(":=")
            i += 2
        elif ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            toks.append(text[i : j + 1])
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise InvalidArgument("template: unterminated raw string")
            toks.append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "()|,":
                if text.startswith(":=", j):
                    break
                j += 1
            toks.append(text[i:j])
            i = j
    return toks


def _parse_pipeline(toks: list[str]) -> _Pipeline:
    decl: list[str] = []
    if ":=" in toks:
        at = toks.index(":=")
        decl = [t for t in toks[:at] if t != ","]
        if not all(d.startswith("$") for d in decl) or not 1 <= len(decl) <= 2:
            raise InvalidArgument("template: bad variable declaration")
        toks = toks[at + 1 :]
    commands: list[Any] = []
    pos = 0
    while True:
        cmd, pos = _parse_command(toks, pos)
        commands.append(cmd)
        if pos < len(toks) and toks[pos] == "|":
            pos += 1
            continue
        break
    if pos != len(toks):
        raise InvalidArgument(f"template: unexpected {toks[pos]!r} in action")
    return _Pipeline(tuple(decl), tuple(commands))


def _parse_command(toks: list[str], pos: int) -> tuple[Any, int]:
    operands: list[Any] = []
    while pos < len(toks) and toks[pos] not in ("|", ")"):
        if toks[pos] == "(":
            depth, end = 0, pos
            for end in range(pos, len(toks)):
                depth += {"(": 1, ")": -1}.get(toks[end], 0)
                if depth == 0:
                    break
            if depth:
                raise InvalidArgument("template: unclosed parenthesis")
            operands.append(_parse_pipeline(toks[pos + 1 : end]))
            pos = end + 1
        else:
            operands.append(_operand(toks[pos]))
            pos += 1
    if not operands:
        raise InvalidArgument("template: missing value for command")
    first = operands[0]
    if isinstance(first, _Call):
        return _Call(first.name, tuple(operands[1:])), pos
    if len(operands) > 1:
        raise InvalidArgument("template: can't give argument to non-function")
    return first, pos


def _operand(tok: str) -> Any:
    if tok == ".":
        return _Field(".", ())
    if tok.startswith("."):
        return _Field(".", tuple(tok[1:].split(".")))
    if tok.startswith("$"):
        base, _, rest = tok.partition(".")
        return _Field(base, tuple(rest.split(".")) if rest else ())
    if tok.startswith('"'):
        try:
            return _Literal(json.loads(tok))
        except ValueError:
            raise InvalidArgument(f"template: bad string {tok}") from None
    if tok.startswith("`"):
        return _Literal(tok[1:-1])
    if tok in ("true", "false"):
        return _Literal(tok == "true")
    if tok == "nil":
        return _Literal(None)
    try:
        return _Literal(int(tok))
    except ValueError:
        pass
    try:
        return _Literal(float(tok))
    except ValueError:
        pass
    if tok not in FUNCS:
        raise InvalidArgument(f'template: function "{tok}" not defined')
    return _Call(tok, ())


def _eval_pipeline(pipe: _Pipeline, dot: Any, vars_: dict[str, Any]) -> Any:
    value: Any = _MISSING
    for i, cmd in enumerate(pipe.commands):
        if isinstance(cmd, _Call):
            args = [_eval_operand(a, dot, vars_) for a in cmd.args]
            if i > 0:
                args.append(value)
            args = [None if a is _MISSING else a for a in args]
            try:
                value = FUNCS[cmd.name](*args)
            except InvalidArgument:
                raise
            except Exception as exc:
                raise InvalidArgument(f"template: error calling {cmd.name}: {exc}") from None
        else:
            if i > 0:
                raise InvalidArgument("template: non-function in pipeline")
            value = _eval_operand(cmd, dot, vars_)
    if pipe.decl:
        vars_[pipe.decl[0]] = value
    return value


def _eval_operand(op: Any, dot: Any, vars_: dict[str, Any]) -> Any:
    if isinstance(op, _Literal):
        return op.value
    if isinstance(op, _Pipeline):
        return _eval_pipeline(op, dot, vars_)
    if isinstance(op, _Call):
        return FUNCS[op.name]()
    if op.base == ".":
        value = dot
    elif op.base in vars_:
        value = vars_[op.base]
    else:
        raise InvalidArgument(f"template: undefined variable {op.base}")
    for name in op.path:
        value = _field(value, name)
    return value


def _field(value: Any, name: str) -> Any:
    if value is _MISSING or value is None:
        return _MISSING
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        if isinstance(value, Record):
            raise InvalidArgument(f"template: can't evaluate field {name}")
        return _MISSING
    attr = getattr(value, name, _MISSING)
    if attr is _MISSING:
        raise InvalidArgument(f"template: can't evaluate field {name}")
    return attr
