"""Docker's use of Go templates: its functions, its table writer, inspect's two passes.

- `parse(fmt)` parses a `--format` with Docker's functions (json, split, join,
  title, lower, upper, pad, truncate, as docker/cli's templates package);
  `HEADER_FUNCS` replaces some of them for a table's header line.
- `context(type_name, fields, labels)` makes the value a listing verb hands its
  template: a pointer to a struct whose fields are niladic methods (as
  docker/cli's formatter contexts), plus `Label "name"` when it has labels.
- `tabwrite` lays out text as Go's text/tabwriter does (column blocks).
- `inspect_one` executes an inspect template as docker/cli does: first on the
  typed object (structs: a missing field is an error; maps: a missing key is
  "<no value>"), then, if that fails, on the raw JSON with missingkey=error.

Errors are `TemplateError` (exit status 1, or 64 for a template that does not
parse in `inspect` and `version`, as Docker).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from portique.cli.gotemplate import (
    ExecError,
    GoError,
    GoList,
    GoMap,
    Method,
    NilPointer,
    Struct,
    Template,
    Typed,
)
from portique.cli.gotemplate.funcs import eval_args, sorted_items
from portique.cli.gotemplate.gofmt import print_value
from portique.cli.gotemplate.values import MISSING
from portique.errors import PortiqueError

__all__ = [
    "HEADER_FUNCS",
    "TemplateError",
    "context",
    "go_json",
    "header_context",
    "inspect_one",
    "parse",
    "tabwrite",
    "typed",
]


class TemplateError(PortiqueError):
    """A --format template that does not parse or fails on the data (Docker: exit 1)."""

    exit_code = 1
    http_status = 400


class TemplateSyntaxError(TemplateError):
    """`inspect` and `version` exit 64 for a template that does not parse."""

    exit_code = 64


# ---------------------------------------------------------------- Go's encoding/json


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif o < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{o:04x}")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append("\ufffd")  # invalid UTF-8 becomes U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise GoError(f"json: unsupported value: {print_value(f)}")
    if f == 0:
        return "0" if math.copysign(1, f) > 0 else "-0"
    exp = abs(f)
    if exp < 1e-6 or exp >= 1e21:
        text = repr(f)
        mant, _, e = text.partition("e")
        mant = mant.removesuffix(".0")
        sign = "-" if e.startswith("-") else "+"
        digits = e.lstrip("+-").lstrip("0") or "0"
        return f"{mant}e{sign}{digits.zfill(2) if len(digits) < 2 else digits}"
    text = repr(f)
    if "e" in text:
        text = f"{f:f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0")


def go_json(value: Any) -> str:
    """encoding/json.Marshal with HTML escaping off (Docker's `json` function)."""
    if value is None or value is MISSING or isinstance(value, NilPointer):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Typed):
        if value.type_name == "json.Number":
            return str(value.value)
        return go_json(value.value)
    if isinstance(value, Struct):
        if value.json is not None:
            return go_json(value.json())
        return (
            "{" + ",".join(f"{_json_string(k)}:{go_json(v)}" for k, v in value.fields.items()) + "}"
        )
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(f"{_json_string(str(k))}:{go_json(v)}" for k, v in sorted_items(value))
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise GoError(f"json: unsupported type: {type(value).__name__}")


# ---------------------------------------------------------------- Docker's functions


def _title(s: str) -> str:
    # strings.Title: upper-case the first letter of each word, leave the rest
    out = []
    prev_letter = False
    for ch in s:
        letter = ch.isalnum() or ch == "_" or ch == "'"
        out.append(ch.upper() if letter and not prev_letter and len(ch.upper()) == 1 else ch)
        prev_letter = letter
    return "".join(out)


def _case(s: str, upper: bool) -> str:
    # unicode.ToUpper/ToLower map one rune to one rune
    conv = [c.upper() if upper else c.lower() for c in s]
    return "".join(c2 if len(c2) == 1 else c for c, c2 in zip(s, conv, strict=True))


def _split(s: str, sep: str) -> GoList:
    if sep == "":
        return GoList(list(s), "string")
    return GoList(s.split(sep), "string")


def _join(elems: Any, sep: str) -> str:
    if elems is None or elems is MISSING:
        return ""
    if isinstance(elems, list | tuple):
        return sep.join(e if isinstance(e, str) else eval_args((e,)) for e in elems)
    if isinstance(elems, Mapping):
        return sep.join(sorted(eval_args((v,)) for v in elems.values()))
    raise GoError(f"expected slice, got {_tname(elems)}")


def _tname(v: Any) -> str:
    from portique.cli.gotemplate.values import type_name

    return type_name(v)


def _bytes_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogateescape"))


def _pad(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    return " " * max(prefix, 0) + source + " " * max(suffix, 0)


def _truncate(source: str, length: int) -> str:
    data = source.encode("utf-8", "surrogateescape")
    if len(data) < length:
        return source
    if length < 0:
        raise GoError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "surrogateescape")


def _json_func(v: Any) -> str:
    try:
        return go_json(v)
    except RecursionError:
        raise GoError("json: unsupported value: encountered a cycle") from None


FUNCS: dict[str, Method] = {
    "json": Method(_json_func, ("interface {}",)),
    "split": Method(_split, ("string", "string"), result="[]string"),
    "join": Method(_join, ("interface {}", "string")),
    "title": Method(_title, ("string",)),
    "lower": Method(lambda s: _case(s, False), ("string",)),
    "upper": Method(lambda s: _case(s, True), ("string",)),
    "pad": Method(_pad, ("string", "int", "int")),
    "truncate": Method(_truncate, ("string", "int")),
}

HEADER_FUNCS: dict[str, Method] = {
    "json": Method(lambda v: v, ("string",)),
    "split": Method(lambda v, _s: v, ("string", "string")),
    "join": Method(lambda v, _s: v, ("string", "string")),
    "title": Method(lambda v: v, ("string",)),
    "lower": Method(lambda v: v, ("string",)),
    "upper": Method(lambda v: v, ("string",)),
    "truncate": Method(lambda v, _n: v, ("string", "int")),
}


def parse(fmt: str, *, name: str = "", syntax_exit: int = 1, prefix: str = "") -> Template:
    """Parse a --format template with Docker's functions; a bad one is a TemplateError."""
    try:
        return Template(fmt, name=name, funcs=FUNCS)
    except ExecError as exc:
        cls = TemplateSyntaxError if syntax_exit == 64 else TemplateError
        raise cls(f"{prefix}{exc}") from None


def execute(tmpl: Template, data: Any, *, prefix: str = "template parsing error: ") -> str:
    try:
        return tmpl.execute(data)
    except ExecError as exc:
        raise TemplateError(f"{prefix}{exc}") from None


# ---------------------------------------------------------------- contexts


def _header_label(name: str) -> str:
    # SubHeaderContext.Label: the last dotted part, '-' and '_' as spaces
    return name.split(".")[-1].replace("-", " ").replace("_", " ")


def context(
    type_name: str, fields: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> Struct:
    """A listing row as docker/cli's formatter context: each field a niladic method."""
    methods: dict[str, Method] = {
        k: Method(lambda v=v: v, result="string") for k, v in fields.items()
    }
    if labels is not None:
        methods["Label"] = Method(lambda n: labels.get(n, ""), ("string",))
    return Struct(type_name, {}, methods, json=lambda: dict(fields))


def header_context(headers: Mapping[str, str]) -> GoMap:
    """What a table's header line executes on: Docker's SubHeaderContext map."""
    return GoMap(headers, "string", "string", {"Label": Method(_header_label, ("string",))})


# ---------------------------------------------------------------- tabwriter


def tabwrite(text: str, *, minwidth: int, padding: int) -> str:
    """Go's text/tabwriter (tabwidth 1, padchar ' ', no flags) over `text`.

    A cell is text ended by a tab; a column block is a run of consecutive lines
    that have a cell in that column, all padded to the block's widest cell plus
    `padding` (at least `minwidth`). The last cell of a line is not aligned.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(cells) - 1) for cells in lines]

    def layout(first: int, last: int, col: int) -> None:
        i = first
        while i < last:
            if col >= len(lines[i]) - 1:
                i += 1
                continue
            j = i
            width = minwidth
            while j < last and col < len(lines[j]) - 1:
                width = max(width, len(lines[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][col] = width
            layout(i, j, col + 1)
            i = j

    layout(0, len(lines), 0)
    out = []
    for cells, ws in zip(lines, widths, strict=True):
        out.append("".join(c.ljust(w) for c, w in zip(cells, ws, strict=False)) + cells[-1])
    return "\n".join(out)


# ---------------------------------------------------------------- inspect

# Dict-valued fields that are Go maps in Docker's inspect types; every other
# JSON object is a struct, where a missing field is an error.
_MAP_FIELDS = frozenset(
    {
        "Labels",
        "ExposedPorts",
        "Volumes",
        "Ports",
        "Networks",
        "PortBindings",
        "Sysctls",
        "StorageOpt",
        "Tmpfs",
        "DriverOpts",
        "Options",
        "Containers",
        "Status",
        "Details",
        "Data",
        "Annotations",
        "Peers",
        "Services",
    }
)
# Element types that matter: a missing key of these maps is a nil pointer
# (`(index .NetworkSettings.Networks "x").IPAddress` fails, as in Docker).
_MAP_ELEMS = {"Networks": "*network.EndpointSettings"}
_POINTERS = {
    "State": "*container.State",
    "Config": "*container.Config",
    "HostConfig": "*container.HostConfig",
    "NetworkSettings": "*container.NetworkSettings",
    "Health": "*container.Health",
    "Healthcheck": "*container.HealthConfig",
}


def typed(value: Any, type_name: str, *, key: str = "", parent: str = "") -> Any:
    """Docker's typed view of an inspect object: structs where Docker has structs."""
    if isinstance(value, Mapping):
        if key in _MAP_FIELDS or (key == "Config" and parent == "LogConfig"):
            items = {k: typed(v, "", key=str(k), parent=key) for k, v in value.items()}
            return GoMap(items, "string", _MAP_ELEMS.get(key, "interface {}"))
        name = type_name or _POINTERS.get(key) or f"types.{key or 'Object'}"
        fields = {k: typed(v, "", key=k, parent=key) for k, v in value.items()}
        return Struct(name, fields)
    if isinstance(value, list):
        return [typed(v, "", key=key, parent=parent) for v in value]
    if value is None and key:
        if key in _MAP_FIELDS:
            return GoMap({}, "string", "string")
        return NilPointer(_POINTERS.get(key, f"*types.{key}"))
    return value


def raw(value: Any) -> Any:
    """The JSON as docker/cli decodes it for its second pass (json.Number for numbers)."""
    if isinstance(value, Mapping):
        return {str(k): raw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [raw(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return Typed(json.dumps(value), "json.Number")
    return value


def inspect_one(tmpl: Template, obj: Mapping[str, Any], type_name: str) -> str:
    """One object's output line, or a TemplateError (docker/cli's TemplateInspector)."""
    try:
        return tmpl.execute(typed(obj, type_name))
    except ExecError:
        pass
    try:
        return tmpl.with_options(missingkey="error").execute(raw(obj))
    except ExecError as exc:
        raise TemplateError(f"template parsing error: {exc}") from None


def rows_text(
    tmpl: Template,
    contexts: Sequence[Any],
    *,
    table: bool,
    headers: Mapping[str, str],
) -> str:
    """Execute a listing template per row; a table gets its header and column layout."""
    body = "".join(execute(tmpl, c) + "\n" for c in contexts)
    if not table:
        return body
    head: list[str] = []
    try:
        tmpl.with_options(funcs=HEADER_FUNCS).execute_into(header_context(headers), head)
    except ExecError:
        pass  # Docker ignores errors in the header line
    text = "".join(head) + "\n" + body
    return tabwrite(text, minwidth=10, padding=3)
