"""`@value`: frozen, slotted value classes that are cheap to define.

    @value
    class User:
        uid: int = 0
        gid: int = 0
        additional_gids: tuple[int, ...] = ()
        env: tuple[str, ...] = field(default_factory=tuple)

behaves like `@dataclass(frozen=True, slots=True)`: keyword or positional
construction in field order, defaults and default factories, field-wise
`==` and `hash`, a `Name(a=1, b=2)` repr, `__match_args__`, assignment
refused, and `dataclasses.fields`/`replace`/`asdict`/`is_dataclass` work on
the result (for callers that use them).

Why not `dataclasses.dataclass`: `portique-runtime` is a new interpreter per
call, and `dataclass()` generates each class's methods as source code and
compiles it with `exec()` at import time: about 0.5 ms per class, ~15 ms for
the 39 model classes of a `run`, plus ~8 ms to import `dataclasses` itself
(it pulls in inspect, ast, dis and tokenize). Here the methods are shared
closures over the field names, so defining a class costs a `type()` call;
`dataclasses` is imported only if someone asks for `fields()` of a value.
mypy sees these classes exactly as dataclasses (PEP 681 `dataclass_transform`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs `portique-runtime` an import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T")
    _V = TypeVar("_V")
else:

    def dataclass_transform(**_: object) -> object:
        """typing's marker, for the type checker only: nothing at run time."""
        return lambda cls: cls


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a value (dataclasses raises its own class of
    the same name, also an AttributeError)."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A default built per instance (a mutable default such as a dict)."""
    return _Factory(default_factory)  # type: ignore[return-value]


_MISSING = object()


def _is_classvar(annotation: object) -> bool:
    # Annotations are strings here (`from __future__ import annotations`).
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "Final"))


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def value(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen slotted value class (see the module docstring)."""
    # Not inspect.get_annotations: importing inspect costs what we save.
    annotations: dict[str, object] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    names = tuple(n for n, a in annotations.items() if not _is_classvar(a))
    namespace = dict(cls.__dict__)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    # A slot and a class attribute cannot share a name: defaults move out.
    defaults = {n: namespace.pop(n) for n in names if n in namespace}
    seen_default = False
    for n in names:
        if n in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default field {n!r} follows a default")
    namespace.update(
        __slots__=names,
        __match_args__=names,
        __init__=_make_init(cls.__name__, names, defaults),
        __repr__=_repr,
        __eq__=_eq,
        __hash__=_hash,
        __setattr__=_refuse_set,
        __delattr__=_refuse_del,
        __reduce__=_reduce,
        __dataclass_fields__=_DataclassFields(),
        _value_defaults=defaults,
    )
    metaclass: type = type(cls)
    made: type[_T] = metaclass(cls.__name__, cls.__bases__, namespace)
    return made


def _make_init(cls_name: str, names: tuple[str, ...], defaults: dict[str, object]) -> Any:
    set_field = object.__setattr__

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls_name}() takes {len(names)} positional arguments")
        for name, arg in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls_name}() got multiple values for argument {name!r}")
            set_field(self, name, arg)
        for name in names[len(args) :]:
            v = kwargs.pop(name, _MISSING)
            if v is _MISSING:
                v = defaults.get(name, _MISSING)
                if v is _MISSING:
                    raise TypeError(f"{cls_name}() missing required argument {name!r}")
                if isinstance(v, _Factory):
                    v = v.make()
            set_field(self, name, v)
        if kwargs:
            raise TypeError(
                f"{cls_name}() got an unexpected keyword argument {next(iter(kwargs))!r}"
            )

    __init__.__qualname__ = f"{cls_name}.__init__"
    return __init__


def _values(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, n) for n in type(obj).__match_args__)  # type: ignore[attr-defined]


def _repr(self: object) -> str:
    names: tuple[str, ...] = type(self).__match_args__  # type: ignore[attr-defined]
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
    return f"{type(self).__qualname__}({inner})"


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        result: bool = NotImplemented
        return result
    return bool(_values(self) == _values(other))


def _hash(self: object) -> int:
    return hash(_values(self))


def _refuse_set(self: object, name: str, _value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_del(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _reduce(self: object) -> tuple[type, tuple[object, ...]]:
    # copy and pickle rebuild through __init__ (the default path would
    # assign slots one by one, which a frozen class refuses).
    return type(self), _values(self)


def replace(obj: _V, **changes: object) -> _V:
    """A copy of the value `obj` with some fields changed (dataclasses.replace)."""
    cls = type(obj)
    for name in cls.__match_args__:  # type: ignore[attr-defined]
        if name not in changes:
            changes[name] = getattr(obj, name)
    return cls(**changes)


def as_dict(obj: object) -> dict[str, object]:
    """Field name -> value, one level deep."""
    return dict(zip(type(obj).__match_args__, _values(obj), strict=True))  # type: ignore[attr-defined]


class _DataclassFields:
    """`__dataclass_fields__`, built on first use from a throwaway real
    dataclass with the same fields, so dataclasses.fields/replace/asdict
    accept values; the result replaces this descriptor on the class."""

    def __get__(self, obj: object, owner: type) -> dict[str, Any]:
        import dataclasses
        from typing import Any

        defaults: dict[str, object] = owner.__dict__["_value_defaults"]
        annotations: dict[str, object] = owner.__dict__.get("__annotations__", {})  # noqa: RUF063
        specs: list[tuple[str, Any, Any]] = []
        for name in owner.__match_args__:  # type: ignore[attr-defined]
            d = defaults.get(name, _MISSING)
            if d is _MISSING:
                f = dataclasses.field()
            elif isinstance(d, _Factory):
                f = dataclasses.field(default_factory=d.make)
            else:
                f = dataclasses.field(default=d)
            specs.append((name, annotations.get(name, Any), f))
        twin = dataclasses.make_dataclass(owner.__name__, specs, frozen=True)
        fields: dict[str, Any] = twin.__dataclass_fields__  # type: ignore[attr-defined]
        type.__setattr__(owner, "__dataclass_fields__", fields)
        return fields


__all__ = ["FrozenInstanceError", "as_dict", "field", "replace", "value"]
