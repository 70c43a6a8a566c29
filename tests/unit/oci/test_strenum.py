"""portique.oci.strenum.StrEnum behaves as enum.StrEnum where the runtime and
its callers use it (the runtime's Status/Op and seccomp's Action/Op)."""

from __future__ import annotations

import copy
import enum
import json
import pickle
import subprocess
import sys
from typing import Any

import pytest

from portique.oci import strenum


def pair() -> tuple[Any, Any]:
    class Real(enum.StrEnum):
        CREATING = "creating"
        RUNNING = "running"
        STOPPED = "stopped"

    class Lite(strenum.StrEnum):
        CREATING = "creating"
        RUNNING = "running"
        STOPPED = "stopped"

    return Real, Lite


def test_members_read_as_enum_members() -> None:
    real, lite = pair()
    for r, m in zip(real, lite, strict=True):
        assert (str(m), format(m), f"{m}", m.name, m.value) == (
            str(r),
            format(r),
            f"{r}",
            r.name,
            r.value,
        )
        assert repr(m).replace("Lite", "Real") == repr(r)
        assert hash(m) == hash(r)
        assert m == r.value
        assert isinstance(m, str)
        assert isinstance(m, lite)
        assert json.dumps({"s": m, "l": [m]}) == json.dumps({"s": r, "l": [r]})
    assert len(lite) == len(real) == 3
    assert [m.name for m in lite] == [m.name for m in real]


def test_lookup_by_value() -> None:
    real, lite = pair()
    assert lite("running") is lite.RUNNING
    assert lite(lite.RUNNING) is lite.RUNNING
    assert {lite.RUNNING: 1}["running"] == {real.RUNNING: 1}["running"] == 1
    for bad in ("RUNNING", "nope", None, 3):
        with pytest.raises(ValueError, match="is not a valid") as want:
            real(bad)
        with pytest.raises(ValueError, match="is not a valid") as got:
            lite(bad)
        assert str(got.value).replace("Lite", "Real") == str(want.value)


def test_identity_survives_copies_and_pickles() -> None:
    _, lite = pair()
    m = lite.STOPPED
    assert copy.copy(m) is m
    assert copy.deepcopy({"k": m})["k"] is m
    assert lite.STOPPED in lite


def test_pickle_round_trip_of_a_module_level_class() -> None:
    from portique.runtime.state import Status

    assert pickle.loads(pickle.dumps(Status.RUNNING)) is Status.RUNNING


def test_members_cannot_be_reassigned() -> None:
    _, lite = pair()
    with pytest.raises(AttributeError):
        lite.RUNNING = "x"


def test_match_statement() -> None:
    _, lite = pair()

    def kind(x: object) -> str:
        match x:
            case lite.RUNNING:
                return "run"
            case _:
                return "other"

    assert kind(lite.RUNNING) == "run"
    assert kind("running") == "run"
    assert kind(lite.STOPPED) == "other"


def test_runtime_enums_import_no_enum() -> None:
    import os

    import portique

    code = (
        "import sys\n"
        f"sys.path.append({os.path.dirname(os.path.dirname(portique.__file__))!r})\n"
        "import portique.runtime.state, portique.oci.seccomp\n"
        "print('enum' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout == "False\n"
