from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portique.engine import db, present
from portique.engine.engine import Engine
from portique.errors import InvalidArgument


def _row(**kw: Any) -> db.ContainerRow:
    base: dict[str, Any] = dict(
        id="a" * 64,
        name="web",
        image="busybox",
        image_id="sha256:" + "b" * 64,
        created=1000.0,
        config={
            "Config": {
                "Cmd": ["sh", "-c", "echo hello world and more"],
                "Entrypoint": None,
                "Labels": {"tier": "front"},
            },
            "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no"}},
            "MountPoints": [
                {"Type": "volume", "Name": "v1", "Source": "/v", "Destination": "/data", "RW": True}
            ],
        },
        status="exited",
        exit_code=3,
        started_at=1010.0,
        finished_at=1070.0,
        pid=0,
    )
    base.update(kw)
    return db.ContainerRow(**base)


def test_status_words() -> None:
    assert present.status_text(_row(), now=1070.0 + 120) == "Exited (3) 2 minutes ago"
    assert present.status_text(_row(status="running"), now=1013.0) == "Up 3 seconds"
    assert present.status_text(_row(status="paused"), now=1013.0) == "Up 3 seconds (Paused)"
    assert present.status_text(_row(status="created")) == "Created"
    assert present.status_text(_row(status="restarting"), now=1071.0).startswith("Restarting (3)")


def test_ps_row_truncates_command() -> None:
    r = present.ps_row(_row())
    assert r["ID"] == "a" * 12
    assert r["Command"] == '"sh -c echo hello wo…"'
    assert present.ps_row(_row(), no_trunc=True)["Command"] == '"sh -c echo hello world and more"'
    assert r["Labels"] == "tier=front"
    assert r["Mounts"] == "v1"


def test_filters() -> None:
    f = present.parse_filters(["status=exited", "label=tier=front", "name=we"])
    assert present.matches(_row(), f, {})
    assert not present.matches(_row(status="running"), f, {})
    assert present.matches(
        _row(), present.parse_filters(["exited=3", "volume=v1", "ancestor=busybox"]), {}
    )
    assert not present.matches(_row(), present.parse_filters(["exited=0"]), {})
    with pytest.raises(InvalidArgument):
        present.parse_filters(["nonsense"])
    with pytest.raises(InvalidArgument):
        present.parse_filters(["color=red"])


def test_inspect_shape(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "root", tmp_path / "run")
    doc = present.inspect(eng, _row(oom_killed=True))
    assert doc["Id"] == "a" * 64
    assert doc["Name"] == "/web"
    assert doc["Path"] == "sh"
    assert doc["Args"] == ["-c", "echo hello world and more"]
    st = doc["State"]
    assert st["Status"] == "exited"
    assert st["ExitCode"] == 3
    assert st["OOMKilled"] is True
    assert st["Running"] is False
    assert st["StartedAt"].endswith("Z")
    assert doc["Mounts"][0]["Name"] == "v1"
    assert doc["Mounts"][0]["Type"] == "volume"
    assert doc["HostConfig"]["NetworkMode"] == "none"
    assert doc["LogPath"] == str(
        tmp_path / "root" / "containers" / ("a" * 64) / f"{'a' * 64}-json.log"
    )
    assert "none" in doc["NetworkSettings"]["Networks"]
    assert (
        present.inspect(eng, _row(created=0.0, started_at=0.0))["State"]["StartedAt"]
        == present.ZERO_TIME
    )
