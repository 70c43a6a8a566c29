"""The fast `state` path's argument reading and printing (cli/runc/quick.py)."""

from __future__ import annotations

import json

import pytest

from portique.cli.runc import quick
from portique.runtime import state as st


def test_constants_match_the_runtime() -> None:
    assert quick.OCI_VERSION == st.OCI_VERSION
    assert quick.STATE_FILE == st.STATE_FILE
    assert quick.EXEC_FIFO == st.EXEC_FIFO


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["state", "abc"], ("/run/portique-runtime", "abc")),
        (["--root", "/r", "state", "a.b-c_d+e"], ("/r", "a.b-c_d+e")),
        (["--root=/r", "--log", "/l", "--log-format", "json", "state", "x"], ("/r", "x")),
        (["-root", "/r", "-log-format=text", "state", "x"], ("/r", "x")),
        (["state"], None),
        (["state", "a", "b"], None),
        (["state", "--help"], None),
        (["--debug", "state", "x"], None),
        (["--systemd-cgroup", "state", "x"], None),
        (["--log-format", "yaml", "state", "x"], None),
        (["--root"], None),
        (["list"], None),
        (["state", ".."], None),
        (["state", "a/b"], None),
        (["state", "é"], None),
        (["state", ""], None),
    ],
)
def test_only_plain_state_calls_take_the_fast_path(
    argv: list[str], want: tuple[str, str] | None
) -> None:
    assert quick.state_argv(argv) == want


@pytest.mark.parametrize(
    "doc",
    [
        {"ociVersion": "1.2.0", "id": "a", "pid": 0, "status": "stopped", "owner": ""},
        {
            "id": "x",
            "pid": 123,
            "bundle": "/b/ü",
            "annotations": {"k": 'v "q" \\ \n \t \u2028 é 😀', "": ""},
        },
    ],
)
def test_printing_is_json_dumps_indent_2(doc: dict[str, object]) -> None:
    assert quick.dumps_indent2(doc) == json.dumps(doc, indent=2)


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError):
        quick.dumps_indent2({"ok": True})
    with pytest.raises(TypeError):
        quick.dumps_indent2({"n": 1.5})


def test_plain_paths_only() -> None:
    assert quick._plain_path("/a/b") == "/a/b"
    for bad in ("/a/b/", "//a", "/a/./b", "/a/../b", "a/b", 3, None, "/a//b"):
        assert quick._plain_path(bad) is None


@pytest.mark.parametrize(
    ("path", "want"),
    [
        (None, "/portique/c1"),
        ("", "/portique/c1"),
        ("/default/c1", "/default/c1"),
        ("/a//b/", "/a/b"),
        ("rel/x", "/portique/rel/x"),
        ("/a/./b", None),
        ("/a/../b", None),
        ("//a", None),
        ("slice:prefix:name", None),
        ("/", None),
        (7, None),
    ],
)
def test_cgroup_paths_as_the_runtime_resolves_them(path: object, want: str | None) -> None:
    from portique.runtime.cgroups import resolve_path

    assert quick._cgroup_dir(path, "c1") == want
    if want is not None:
        assert resolve_path(path, "c1") == want  # type: ignore[arg-type]


def test_constants_match_the_cgroup_layer() -> None:
    from portique.runtime.cgroups.base import MAX_DEPTH, PARENT

    assert PARENT == "portique"
    assert MAX_DEPTH == 32
