"""text/template's predefined functions: and call html index slice js len not or
print printf println urlquery eq ne lt le gt ge.

Each is a values.Method with Go's parameter types; "reflect.Value" takes any
value as is (even a missing one), "interface {}" takes any value. `and` and
`or` are evaluated by the executor itself, so that they short-circuit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portique.cli.gotemplate.gofmt import sprint, sprintf, sprintln
from portique.cli.gotemplate.values import (
    MISSING,
    GoError,
    GoList,
    GoMap,
    Method,
    NilPointer,
    Struct,
    Typed,
    is_true,
    kind,
    kind_of_name,
    type_name,
)

__all__ = ["BUILTINS", "assignable", "kind_of", "sorted_items", "zero_value"]

_V = "reflect.Value"


def kind_of(typ: str) -> str:
    if typ.startswith("[]"):
        return "slice"
    if typ.startswith("map["):
        return "map"
    if typ.startswith("*"):
        return "ptr"
    if typ in ("interface {}", _V):
        return "interface"
    return kind_of_name(typ)


def assignable(value: Any, typ: str) -> bool:
    if typ in ("interface {}", _V):
        return True
    # an untyped []interface {} or map literal of ours cannot stand for []string
    return type_name(value) == typ


def zero_value(typ: str) -> Any:
    """The zero value of a Go type, for missingkey=zero and nil arguments."""
    k = kind_of(typ)
    if k == "interface":
        return None
    if k == "string":
        return "" if typ == "string" else Typed("", typ)
    if k in ("int", "uint"):
        return 0 if typ == "int" else Typed(0, typ)
    if k == "float":
        return 0.0
    if k == "bool":
        return False
    if k == "slice":
        return GoList((), typ[2:])
    if k == "map":
        key, _, elem = typ[4:].partition("]")
        return GoMap((), key, elem)
    if k == "ptr":
        return NilPointer(typ)
    return Struct(typ)


def sorted_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """Map entries in Go's order (fmtsort): numbers by value, strings by bytes."""

    def key(k: Any) -> tuple[int, Any]:
        if isinstance(k, bool):
            return (0, k)
        if isinstance(k, int | float):
            return (1, k)
        if isinstance(k, Typed):
            return (1, k.value) if kind(k) in ("int", "uint", "float") else (2, str(k.value))
        return (2, str(k).encode("utf-8", "surrogateescape"))

    return sorted(m.items(), key=lambda kv: key(kv[0]))


def _indirect(value: Any) -> tuple[Any, bool]:
    if isinstance(value, NilPointer):
        return value, True
    if isinstance(value, Struct) and value.is_pointer:
        return Struct(value.type_name[1:], value.fields, value.methods), False
    return value, False


# ---------------------------------------------------------------- index, slice, len


def _as_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _index_arg(index: Any, cap: int) -> int:
    if index is MISSING or index is None:
        raise GoError("cannot index slice/array with nil")
    k = kind(index)
    if k not in ("int", "uint"):
        raise GoError(f"cannot index slice/array with type {type_name(index)}")
    x = int(index.value if isinstance(index, Typed) else index)
    if x < 0 or x > cap:
        raise GoError(f"index out of range: {x}")
    return x


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise GoError("index of untyped nil")
    for index in indexes:
        item, is_nil = _indirect(item)
        if is_nil:
            raise GoError("index of nil pointer")
        if isinstance(item, str):
            data = _as_bytes(item)
            x = _index_arg(index, len(data))
            if x == len(data):
                raise GoError("reflect: string index out of range")
            item = Typed(data[x], "uint8")
        elif isinstance(item, list | tuple):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise GoError("reflect: slice index out of range")
            item = item[x]
        elif isinstance(item, Mapping):
            key_type = item.key if isinstance(item, GoMap) else "string"
            elem = item.elem if isinstance(item, GoMap) else "interface {}"
            if index is MISSING or index is None:
                raise GoError(f"value is nil; should be of type {key_type}")
            if type_name(index) != key_type:
                raise GoError(f"value has type {type_name(index)}; should be {key_type}")
            item = item[index] if index in item else zero_value(elem)
        else:
            raise GoError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise GoError("cannot 3-index slice a string")
        seq: Any = _as_bytes(item)
    elif isinstance(item, list | tuple):
        seq = item
    else:
        raise GoError(f"can't slice item of type {type_name(item)}")
    idx = [0, len(seq), 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(seq))
    if idx[0] > idx[1]:
        raise GoError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise GoError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0] : idx[1]]
    if isinstance(item, str):
        return part.decode("utf-8", "surrogateescape")
    if isinstance(item, GoList):
        return GoList(part, item.elem)
    return list(part)


def _len(item: Any) -> int:
    item, is_nil = _indirect(item)
    if is_nil:
        raise GoError("len of nil pointer")
    if isinstance(item, str):
        return len(_as_bytes(item))
    if isinstance(item, list | tuple | Mapping):
        return len(item)
    if item is MISSING or item is None:
        raise GoError("reflect: call of reflect.Value.Type on zero Value")
    raise GoError(f"len of type {type_name(item)}")


# ---------------------------------------------------------------- comparison

_BAD_TYPE = "invalid type for comparison"


def _basic(v: Any) -> tuple[str, Any]:
    """Go's basicKind, and the value to compare."""
    if isinstance(v, bool):
        return "bool", v
    if isinstance(v, int):
        return "int", v
    if isinstance(v, float):
        return "float", v
    if isinstance(v, complex):
        return "complex", v
    if isinstance(v, str):
        return "string", v
    if isinstance(v, Typed):
        return kind_of_name(v.type_name), v.value
    return "invalid", v


def _is_nil(v: Any) -> bool:
    return v is MISSING or v is None or isinstance(v, NilPointer)


def _comparable(v: Any) -> bool:
    if isinstance(v, list | tuple | Mapping) or kind(v) == "func":
        return False
    if isinstance(v, Struct) and not v.is_pointer:
        return all(_comparable(f) for f in v.fields.values())
    return True


def _valid(v: Any) -> bool:
    return v is not MISSING and v is not None


def _eq(arg1: Any, *rest: Any) -> bool:
    if not rest:
        raise GoError("missing argument for comparison")
    k1, v1 = _basic(arg1)
    for arg in rest:
        k2, v2 = _basic(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                if v1 == v2:
                    return True
            elif _valid(arg1) and _valid(arg):
                raise GoError(
                    f"incompatible types for comparison: {type_name(arg1)} and {type_name(arg)}"
                )
            continue
        if k1 != "invalid":
            if v1 == v2:
                return True
            continue
        if kind(arg1) != kind(arg) and _valid(arg1) and _valid(arg):
            raise GoError(
                f"non-comparable types {sprintf('%s', arg1)}: {type_name(arg1)}, "
                f"{type_name(arg)}: {sprintf('%s', arg)}"
            )
        if _is_nil(arg1) or _is_nil(arg):
            if _is_nil(arg1) == _is_nil(arg):
                return True
            continue
        if not _comparable(arg):
            raise GoError(f"non-comparable type {sprintf('%s', arg)}: {type_name(arg)}")
        if arg1 is arg or (
            isinstance(arg1, Struct)
            and isinstance(arg, Struct)
            and not arg1.is_pointer
            and arg1.type_name == arg.type_name
            and dict(arg1.fields) == dict(arg.fields)
        ):
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    k1, v1 = _basic(a)
    if k1 == "invalid":
        raise GoError(_BAD_TYPE)
    k2, v2 = _basic(b)
    if k2 == "invalid":
        raise GoError(_BAD_TYPE)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(v1 < v2)
        raise GoError(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")
    if k1 in ("bool", "complex"):
        raise GoError(_BAD_TYPE)
    if k1 == "string":
        return _as_bytes(str(v1)) < _as_bytes(str(v2))
    return bool(v1 < v2)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


# ---------------------------------------------------------------- escaping


def eval_args(args: tuple[Any, ...]) -> str:
    """fmt.Sprint of the arguments, pointers followed (text/template's evalArgs)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*(_indirect(a)[0] if isinstance(a, Struct) else a for a in args))


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}


def _html(*args: Any) -> str:
    return "".join(_HTML.get(c, c) for c in eval_args(args))


_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _js(*args: Any) -> str:
    from portique.cli.gotemplate.gofmt import _is_print

    out = []
    for c in eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " ":
            out.append(f"\\u00{ord(c):02X}")
        elif c >= "\x80" and not _is_print(c):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_as_bytes(eval_args(args)), safe="")


def _not(arg: Any) -> bool:
    return not is_true(arg)


def _call(fn: Any, *args: Any) -> Any:
    if fn is MISSING or fn is None:
        raise GoError("call of nil")
    if isinstance(fn, Method):
        return fn.fn(*args)
    if not callable(fn):
        raise GoError(f"non-function of type {type_name(fn)}")
    return fn(*args)


def _unreachable(*args: Any) -> Any:  # and/or: evaluated by the executor
    raise GoError("and/or called directly")


BUILTINS: dict[str, Method] = {
    "and": Method(_unreachable, (_V,), variadic=_V, result=_V),
    "or": Method(_unreachable, (_V,), variadic=_V, result=_V),
    "call": Method(_call, (_V,), variadic=_V, result=_V),
    "html": Method(_html, (), variadic="interface {}"),
    "index": Method(_index, (_V,), variadic=_V, result=_V),
    "slice": Method(_slice, (_V,), variadic=_V, result=_V),
    "js": Method(_js, (), variadic="interface {}"),
    "len": Method(_len, (_V,), result="int"),
    "not": Method(_not, (_V,), result="bool"),
    "print": Method(sprint, (), variadic="interface {}"),
    "printf": Method(sprintf, ("string",), variadic="interface {}"),
    "println": Method(sprintln, (), variadic="interface {}"),
    "urlquery": Method(_urlquery, (), variadic="interface {}"),
    "eq": Method(_eq, (_V,), variadic=_V, result="bool"),
    "ne": Method(_ne, (_V, _V), result="bool"),
    "lt": Method(_lt, (_V, _V), result="bool"),
    "le": Method(_le, (_V, _V), result="bool"),
    "gt": Method(_gt, (_V, _V), result="bool"),
    "ge": Method(_ge, (_V, _V), result="bool"),
}
