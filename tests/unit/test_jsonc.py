"""portique.jsonc gives what json gives, values and errors alike."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from portique import jsonc

DOCS = [
    '{"a": 1, "b": [1, 2.5, -3e10, true, false, null], "c": {"d": "\\u00e9\\n"}}',
    "  [1, 2]  \n",
    '"text"',
    "0",
    "-0.0",
    "1e400",
    '{"x": NaN, "y": Infinity, "z": -Infinity}',
    '{"dup": 1, "dup": 2}',
    '{"big": 123456789012345678901234567890}',
    '{"emoji": "\\ud83d\\ude00", "raw": "\u00e9"}',
    "[]",
    "{}",
]
BAD = ["", "  ", "{", '{"a": 1} x', "[1,]", "\ufeff{}", "{'a': 1}", "nul", '"\x01"', "[1] [2]"]


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("doc", DOCS)
def test_loads_equals_json(doc: str) -> None:
    assert same(jsonc.loads(doc), json.loads(doc))
    assert same(jsonc.loads(doc.encode()), json.loads(doc.encode()))


@pytest.mark.parametrize("doc", BAD)
def test_loads_errors_are_json_errors(doc: str) -> None:
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(doc)
    with pytest.raises(json.JSONDecodeError) as got:
        jsonc.loads(doc)
    assert str(got.value) == str(want.value)


def test_loads_other_encodings_as_json() -> None:
    for data in ('{"a": "é"}'.encode("utf-16"), b'\xef\xbb\xbf{"a": 1}', b"\xff"):
        try:
            want: object = json.loads(data)
        except ValueError as e:
            with pytest.raises(type(e)):
                jsonc.loads(data)
        else:
            assert jsonc.loads(data) == want


VALUES: list[object] = [
    {"a": 1, "b": [1, 2.5, True, False, None], "c": {"d": "é\n\x00"}},
    [1.0, 1e300, -0.0, float("inf"), float("-inf")],
    {7: "int key", 2.5: "float key", False: "bool key", None: "none key"},
    "text",
    [],
    {},
    ("a", "tuple"),
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_equals_json(value: object) -> None:
    for seps in ((", ", ": "), (",", ":")):
        assert jsonc.dumps(value, separators=seps) == json.dumps(value, separators=seps)


def test_dumps_refusals_are_json_refusals() -> None:
    loop: list[object] = []
    loop.append(loop)
    for value in (object(), {(1, 2): 3}, loop, {"s": {1, 2}}):
        with pytest.raises((TypeError, ValueError)) as want:
            json.dumps(value)
        with pytest.raises(type(want.value)) as got:
            jsonc.dumps(value)
        assert str(got.value) == str(want.value)


def test_no_json_import_on_the_plain_path() -> None:
    import os

    import portique

    code = (
        "import sys\n"
        f"sys.path.append({os.path.dirname(os.path.dirname(portique.__file__))!r})\n"
        "from portique import jsonc\n"
        "v = jsonc.loads(jsonc.dumps({'a': [1, 2.5, None]}))\n"
        "print(v, 'json' in sys.modules, 're' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout == "{'a': [1, 2.5, None]} False False\n"


def test_errors_without_json_imported_are_json_errors() -> None:
    import os

    import portique

    code = (
        "import sys\n"
        f"sys.path.append({os.path.dirname(os.path.dirname(portique.__file__))!r})\n"
        "from portique import jsonc\n"
        "try:\n"
        "    jsonc.loads(b'{not json')\n"
        "except ValueError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout == (
        "JSONDecodeError Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)\n"
    )
