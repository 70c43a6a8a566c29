"""The object routes' readings of hostile input, without a server: registry
auth headers, pull names, event times, typed body fields, progress messages."""

from __future__ import annotations

import base64
import json

import pytest

from portique.api.events import parse_time
from portique.api.fields import Fields
from portique.api.images import _pull_name, auth_config, registry_auth
from portique.api.jsonstream import progress_message
from portique.errors import InvalidArgument
from portique.image.pull import ProgressEvent


def _header(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_registry_auth_header() -> None:
    assert registry_auth("") == {}
    assert registry_auth(_header(None)) == {}
    assert registry_auth(_header({})) == {}
    got = registry_auth(_header({"username": "u", "password": "p?>~", "serveraddress": "r:5000"}))
    assert got == {"username": "u", "password": "p?>~", "serveraddress": "r:5000"}
    # `auth` (base64 of user:password) alone, keys in any case.
    both = base64.b64encode(b"alice:s3:cret").decode()
    assert registry_auth(_header({"Auth": both})) == {
        "auth": both,
        "username": "alice",
        "password": "s3:cret",
    }


@pytest.mark.parametrize(
    "header",
    [
        "!!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _header([1, 2]),
        _header({"username": 3}),
        _header({"auth": "bm9jb2xvbg=="}),  # "nocolon"
        "x" * 20000,
    ],
)
def test_bad_registry_auth_is_invalid_argument(header: str) -> None:
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        registry_auth(header)


def test_auth_config_of_a_body() -> None:
    with pytest.raises(InvalidArgument, match="auth: password must be a string"):
        auth_config({"username": "u", "password": 1}, "auth")


@pytest.mark.parametrize(
    ("image", "tag", "want"),
    [
        ("busybox", "latest", ("busybox:latest", False)),
        ("busybox", "", ("busybox", True)),
        ("busybox:1", "", ("busybox:1", False)),
        ("reg:5000/a/b", "v1", ("reg:5000/a/b:v1", False)),
        ("busybox", "sha256:" + "a" * 64, ("busybox@sha256:" + "a" * 64, False)),
    ],
)
def test_pull_name(image: str, tag: str, want: tuple[str, bool]) -> None:
    assert _pull_name(image, tag) == want


@pytest.mark.parametrize(
    ("image", "tag"),
    [("", ""), ("a/../b", "1"), ("busybox", "../x"), ("busybox:1", "2"), ("UP", "1")],
)
def test_bad_pull_names(image: str, tag: str) -> None:
    with pytest.raises(InvalidArgument):
        _pull_name(image, tag)


def test_event_times() -> None:
    assert parse_time("since", "") is None
    assert parse_time("since", "1700000000") == 1_700_000_000_000_000_000
    assert parse_time("since", "1700000000.5") == 1_700_000_000_500_000_000
    assert parse_time("until", "1700000000.000000001") == 1_700_000_000_000_000_001
    assert parse_time("since", "2023-11-14T22:13:20Z") == 1_700_000_000_000_000_000
    with pytest.raises(InvalidArgument, match="invalid since 'soon'"):
        parse_time("since", "soon")


def test_fields_refuse_unknown_and_wrong_types() -> None:
    body = Fields(
        {"Name": "n", "Labels": {"a": "b"}, "On": True, "N": 3},
        "x",
        known=("Name", "Labels", "On", "N"),
    )
    assert body.text("Name") == "n"
    assert body.text_map("Labels") == {"a": "b"}
    assert body.boolean("On") is True
    assert body.integer("N") == 3
    assert body.text("Missing", "dflt") == "dflt"
    with pytest.raises(InvalidArgument, match="x: unknown field 'Extra'"):
        Fields({"Extra": 1}, "x", known=())
    with pytest.raises(InvalidArgument, match="x: N must be an integer, not a boolean"):
        Fields({"N": True}, "x", known=("N",)).integer("N")
    with pytest.raises(InvalidArgument, match="x: Name must be a string, not a number"):
        Fields({"Name": 1.5}, "x", known=("Name",)).text("Name")
    with pytest.raises(InvalidArgument, match=r"x: L\['a'\] must be a string"):
        Fields({"L": {"a": None}}, "x", known=("L",)).text_map("L")
    with pytest.raises(InvalidArgument, match="x: Name is required"):
        Fields({}, "x", known=("Name",)).text("Name", required=True)
    with pytest.raises(InvalidArgument, match="expected a JSON object"):
        Fields([], "x", known=())  # type: ignore[arg-type]


def test_progress_messages_are_docker_json() -> None:
    assert progress_message(ProgressEvent("", "v1: Pulling from library/busybox")) == {
        "status": "Pulling from library/busybox",
        "id": "v1",
    }
    assert progress_message(ProgressEvent("", "Digest: sha256:ab")) == {
        "status": "Digest: sha256:ab"
    }
    msg = progress_message(ProgressEvent("abc", "Downloading", 512, 1024))
    assert msg["progressDetail"] == {"current": 512, "total": 1024}
    assert msg["progress"].startswith("[" + "=" * 24 + ">")
    assert progress_message(ProgressEvent("abc", "Pull complete")) == {
        "status": "Pull complete",
        "progressDetail": {},
        "id": "abc",
    }
