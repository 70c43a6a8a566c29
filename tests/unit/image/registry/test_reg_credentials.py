"""Docker config.json credentials: read, write, remove, other files."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from portique.errors import InvalidArgument
from portique.image.credentials import (
    DOCKER_HUB_KEY,
    Credentials,
    docker_config_path,
    normalize_server,
    remove_credentials,
    store_credentials,
)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(
    ("server", "host"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("http://Reg.Example", "reg.example"),
        (DOCKER_HUB_KEY, "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
    ],
)
def test_normalize_server(server: str, host: str) -> None:
    assert normalize_server(server) == host


def test_round_trip_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"psFormat": "x", "auths": {"other:1": {"auth": b64("o:p")}}}))
    store_credentials("127.0.0.1:5000", "user", "pa:ss", path)
    doc = json.loads(path.read_text())
    assert doc["psFormat"] == "x"
    assert doc["auths"]["127.0.0.1:5000"] == {"auth": b64("user:pa:ss")}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = Credentials.load(path)
    assert creds.get("127.0.0.1:5000") == ("user", "pa:ss")
    assert creds.get("other:1") == ("o", "p")
    assert creds.get("nothere") is None
    assert remove_credentials("127.0.0.1:5000", path)
    assert not remove_credentials("127.0.0.1:5000", path)
    assert Credentials.load(path).get("127.0.0.1:5000") is None
    assert json.loads(path.read_text())["auths"] == {"other:1": {"auth": b64("o:p")}}


def test_docker_hub_key_and_spellings(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"https://reg.example/v1/": {"auth": b64("a:b")}}}))
    store_credentials("docker.io", "hub", "pw", path)
    doc = json.loads(path.read_text())
    assert DOCKER_HUB_KEY in doc["auths"]
    creds = Credentials.load(path)
    assert creds.get("docker.io") == ("hub", "pw")
    assert creds.get("registry-1.docker.io") == ("hub", "pw")
    assert creds.get("reg.example") == ("a", "b")
    # Storing again under another spelling replaces rather than duplicates.
    store_credentials("reg.example", "c", "d", path)
    auths = json.loads(path.read_text())["auths"]
    assert [k for k in auths if "reg.example" in k] == ["reg.example"]


def test_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.json"
    store_credentials("h:1", "u", "p", path)
    assert Credentials.load(path).get("h:1") == ("u", "p")


def test_env_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert docker_config_path() == tmp_path / "dc" / "config.json"
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps({"auths": {"quay.example": {"auth": b64("q:r")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    store_credentials("h:1", "u", "p")
    creds = Credentials.load()
    assert creds.get("h:1") == ("u", "p")
    assert creds.get("quay.example") == ("q", "r")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[1]", "expected a JSON object"),
        ("{bad", "invalid JSON"),
        ('{"auths": []}', "auths must be an object"),
        ('{"auths": {"h": {"auth": "!!!"}}}', "invalid base64"),
        ('{"auths": {"h": {"auth": "' + b64("nocolon") + '"}}}', "user:password"),
    ],
)
def test_rejects_bad_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(InvalidArgument, match=match):
        Credentials.load(path)


def test_empty_file_is_no_credentials(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("")
    assert Credentials.load(path).get("x") is None
