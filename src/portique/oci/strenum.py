"""`StrEnum` for the runtime's few enums, without importing `enum`.

`portique-runtime` is a new interpreter per call, and `import enum` costs it
~1 ms (with functools and collections behind it, which nothing else on its
path needs once contextlib is gone too). The runtime's enums (a container's
Status and the operations on it, seccomp's actions and comparison
operators) are plain string constants: here a class of them behaves as
`enum.StrEnum` does for everything the runtime and its callers use — each
member an instance of the class and of `str`, equal to its value, printed
and JSON-encoded as it, `Cls(value)` giving the member (ValueError
otherwise), iteration in definition order, `.name`/`.value`, StrEnum's repr and
hash, copies and pickles that are the member itself. The type checker sees
`enum.StrEnum` (TYPE_CHECKING): the two are interchangeable to it, and
tests/unit/oci/test_strenum.py checks them side by side.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class _StrEnumType(type):
    """The class of a StrEnum class: members made from its str attributes."""

    _member_names_: list[str]
    _value2member_map_: dict[str, StrEnum]

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> _StrEnumType:
        values = {k: v for k, v in ns.items() if not k.startswith("_") and isinstance(v, str)}
        body = {k: v for k, v in ns.items() if k not in values}
        cls = super().__new__(mcls, name, bases, body)
        type.__setattr__(cls, "_member_names_", [])
        type.__setattr__(cls, "_value2member_map_", {})
        for key, val in values.items():
            if val in cls._value2member_map_:
                raise TypeError(f"{name}.{key}: an alias of {val!r} (not supported here)")
            member: StrEnum = str.__new__(cls, val)  # type: ignore[arg-type]
            member._name_ = key
            member._value_ = val
            type.__setattr__(cls, key, member)
            cls._member_names_.append(key)
            cls._value2member_map_[val] = member
        return cls

    def __call__(cls, value: object) -> StrEnum:
        if isinstance(value, cls):
            return value
        try:
            return cls._value2member_map_[value]  # type: ignore[index]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    def __iter__(cls) -> Iterator[StrEnum]:
        return (cls._value2member_map_[getattr(cls, n)] for n in cls._member_names_)

    def __len__(cls) -> int:
        return len(cls._member_names_)

    def __contains__(cls, value: object) -> bool:
        if not isinstance(value, cls):
            # Python 3.11's enum refuses a non-member the same way.
            raise TypeError(
                f"unsupported operand type(s) for 'in': {type(value).__qualname__!r} and 'EnumType'"
            )
        return True

    def __setattr__(cls, name: str, value: object) -> None:
        if name in cls.__dict__.get("_member_names_", ()):
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)

    def __repr__(cls) -> str:
        return f"<enum {cls.__name__!r}>"


class StrEnum(str, metaclass=_StrEnumType):
    _name_: str
    _value_: str

    @property
    def name(self) -> str:
        return self._name_

    @property
    def value(self) -> str:
        return self._value_

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {str.__repr__(self._value_)}>"

    __str__ = str.__str__
    __format__ = str.__format__

    __hash__ = str.__hash__  # StrEnum's: str comes first in its MRO

    def __reduce_ex__(self, protocol: object) -> tuple[type, tuple[str]]:
        return type(self), (self._value_,)

    def __copy__(self) -> StrEnum:
        return self

    def __deepcopy__(self, memo: object) -> StrEnum:
        return self


__all__ = ["StrEnum"]
