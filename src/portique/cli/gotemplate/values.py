"""The Go values a template sees, modelled on Python values.

text/template works on reflect.Value; here a Python value stands for the Go
value a Docker command would hand its template:

    str -> string        bool -> bool        int -> int        float -> float64
    complex -> complex128                    None -> a nil interface value
    list/tuple -> []interface {}             dict -> map[string]interface {}
    Struct -> a struct (or pointer to one) with fields and methods
    NilPointer -> a typed nil pointer (a struct field that is not set)
    Typed -> a basic value of another named type (uint8, int64, json.Number...)

`GoList` and `GoMap` carry an element type for %T and error messages when a
slice or map is not []interface {} / map[string]interface {}.
`MISSING` is Go's invalid reflect.Value: what a missing map key yields, which
prints as "<no value>".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "MISSING",
    "GoError",
    "GoList",
    "GoMap",
    "Method",
    "NilPointer",
    "Struct",
    "Typed",
    "indirect_type",
    "is_true",
    "type_name",
]


class _Missing:
    """Go's zero reflect.Value (invalid): a missing map key, a nil interface unwrapped."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class GoError(Exception):
    """What a Go function returns as its error result; execution stops with it."""


class Method:
    """A method of a Struct: a Python callable with Go parameter types.

    `params` are Go type names ("string", "int", "interface {}", ...); the
    callable gets the receiver's arguments only (it closes over the receiver).
    """

    __slots__ = ("fn", "params", "result", "variadic")

    def __init__(
        self,
        fn: Callable[..., Any],
        params: Sequence[str] = (),
        *,
        variadic: str | None = None,
        result: str = "string",
    ) -> None:
        self.fn = fn
        self.params = tuple(params)
        self.variadic = variadic
        self.result = result


class Struct:
    """A Go struct value: named fields in declaration order, and methods.

    `type_name` is what Go prints for its type ("*formatter.ContainerContext",
    "types.Port"); a leading "*" makes it a pointer to a struct, which fmt
    prints as &{...}. `stringer` plays Go's String() method for printing.
    `json` gives what encoding/json would marshal instead of the fields.
    """

    __slots__ = ("fields", "json", "methods", "stringer", "type_name")

    def __init__(
        self,
        type_name: str,
        fields: Mapping[str, Any] | None = None,
        methods: Mapping[str, Method] | None = None,
        *,
        stringer: Callable[[], str] | None = None,
        json: Callable[[], Any] | None = None,
    ) -> None:
        self.type_name = type_name
        self.fields: Mapping[str, Any] = fields if fields is not None else {}
        self.methods: Mapping[str, Method] = methods if methods is not None else {}
        self.stringer = stringer
        self.json = json

    @property
    def is_pointer(self) -> bool:
        return self.type_name.startswith("*")

    def __repr__(self) -> str:
        return f"Struct({self.type_name!r}, {dict(self.fields)!r})"


class NilPointer:
    """A nil pointer of a named type: prints "<nil>", is false, has no fields."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str = "*struct {}") -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"NilPointer({self.type_name!r})"


class Typed:
    """A basic value whose Go type is not the default one for its Python type."""

    __slots__ = ("type_name", "value")

    def __init__(self, value: Any, type_name: str) -> None:
        self.value = value
        self.type_name = type_name

    @property
    def kind(self) -> str:
        return kind_of_name(self.type_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Typed) and (self.value, self.type_name) == (
            other.value,
            other.type_name,
        )

    def __hash__(self) -> int:
        return hash((self.value, self.type_name))

    def __repr__(self) -> str:
        return f"Typed({self.value!r}, {self.type_name!r})"


class GoList(list[Any]):
    """A slice whose element type is not interface {} (e.g. []string)."""

    def __init__(self, items: Any = (), elem: str = "interface {}") -> None:
        super().__init__(items)
        self.elem = elem


class GoMap(dict[Any, Any]):
    """A map whose key or value type is not the default (e.g. map[string]string).

    `methods` are those of a named map type (Docker's table header has Label).
    """

    def __init__(
        self,
        items: Any = (),
        key: str = "string",
        elem: str = "interface {}",
        methods: Mapping[str, Method] | None = None,
    ) -> None:
        super().__init__(items)
        self.key = key
        self.elem = elem
        self.methods: Mapping[str, Method] = methods or {}


_INT_KINDS = {"int", "int8", "int16", "int32", "int64", "rune"}
_UINT_KINDS = {"uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "byte"}


def kind_of_name(name: str) -> str:
    """The reflect kind for a basic Go type name ("uint8" -> "uint", "json.Number" -> "string")."""
    if name in _INT_KINDS:
        return "int"
    if name in _UINT_KINDS:
        return "uint"
    if name in ("float32", "float64"):
        return "float"
    if name in ("complex64", "complex128"):
        return "complex"
    if name == "bool":
        return "bool"
    return "string"  # named string types such as json.Number


def kind(value: Any) -> str:
    """A coarse reflect.Kind: invalid, bool, int, uint, float, complex, string,
    slice, map, struct, ptr, func."""
    if value is MISSING or value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Typed):
        return value.kind
    if isinstance(value, list | tuple):
        return "slice"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, Struct):
        return "ptr" if value.is_pointer else "struct"
    if isinstance(value, NilPointer):
        return "ptr"
    if callable(value):
        return "func"
    return "invalid"


def type_name(value: Any) -> str:
    """What Go's %T (reflect.Type.String) prints for the value."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Typed | Struct | NilPointer):
        return value.type_name
    if isinstance(value, GoList):
        return f"[]{value.elem}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if isinstance(value, GoMap):
        return f"map[{value.key}]{value.elem}"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if callable(value):
        return "func(...interface {}) interface {}"
    return type(value).__name__


def indirect_type(name: str) -> str:
    return name[1:] if name.startswith("*") else name


def is_true(value: Any) -> bool:
    """text/template's truth: false, 0, nil, and empty strings, slices and maps are false."""
    if value is None or value is MISSING or isinstance(value, NilPointer):
        return False
    if isinstance(value, Typed):
        return bool(value.value)
    if isinstance(value, Struct):
        return True
    if isinstance(value, bool | int | float | complex | str | list | tuple | Mapping):
        return bool(value)
    return True  # functions and other non-nil values
