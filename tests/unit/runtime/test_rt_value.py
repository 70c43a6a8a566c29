"""portique.oci.value: frozen slotted value classes without dataclasses' exec()."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from typing import ClassVar

import pytest

from portique.oci.value import FrozenInstanceError, as_dict, field, replace, value


@value
class Point:
    """A point."""

    kind: ClassVar[str] = "point"
    x: int
    y: int = 0
    tags: dict[str, str] = field(default_factory=dict)


def test_construction_positional_keyword_and_defaults() -> None:
    assert Point(1) == Point(x=1, y=0, tags={})
    assert Point(1, 2).y == 2
    assert Point(1, y=3).y == 3
    assert Point.kind == "point"
    assert vars(Point)["__slots__"] == ("x", "y", "tags")
    assert Point.__match_args__ == ("x", "y", "tags")
    assert Point.__doc__ == "A point."


def test_default_factory_builds_one_per_instance() -> None:
    a, b = Point(1), Point(2)
    assert a.tags == {}
    assert a.tags is not b.tags


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing required argument 'x'"),
        ((1, 2, {}, 4), {}, "takes 3 positional arguments"),
        ((1,), {"x": 2}, "multiple values for argument 'x'"),
        ((1,), {"z": 2}, "unexpected keyword argument 'z'"),
    ],
)
def test_bad_arguments_raise_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_frozen() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y
    with pytest.raises(AttributeError):
        p.other = 1  # type: ignore[attr-defined]


def test_eq_hash_repr() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    same_fields: object = (1, 0, {})
    assert Point(1) != same_fields
    assert hash(Point(1, 2, tags=())) == hash(Point(1, 2, tags=()))  # type: ignore[arg-type]
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags={})"
    assert {Point(1, tags=()), Point(1, tags=())} == {Point(1, tags=())}  # type: ignore[arg-type]


def test_replace_and_as_dict() -> None:
    p = Point(1, 2, {"a": "b"})
    q = replace(p, y=5)
    assert q == Point(1, 5, {"a": "b"})
    assert p.y == 2
    assert as_dict(p) == {"x": 1, "y": 2, "tags": {"a": "b"}}


def test_dataclasses_functions_accept_values() -> None:
    # The engine calls dataclasses.replace on oci.runtime.Process.
    p = Point(1, 2)
    assert dataclasses.is_dataclass(p)
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags"]
    assert dataclasses.replace(p, x=7) == Point(7, 2)
    assert dataclasses.asdict(p) == {"x": 1, "y": 2, "tags": {}}


def test_copy_and_pickle_round_trip() -> None:
    p = Point(1, 2, {"k": "v"})
    assert copy.copy(p) == p
    d = copy.deepcopy(p)
    assert d == p
    assert d.tags is not p.tags
    assert pickle.loads(pickle.dumps(p)) == p


def test_non_default_after_default_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default field 'b' follows a default"):

        @value
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_model_modules_do_not_import_dataclasses() -> None:
    # The point of the module: a `run` imports every model without paying
    # for dataclasses (and inspect, ast, dis behind it).
    code = (
        "import sys, portique.oci.runtime, portique.runtime.state, portique.runtime.sync;"
        "print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
