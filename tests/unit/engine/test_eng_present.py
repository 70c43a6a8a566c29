from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portique.engine import containers, db, present
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


def test_status_words_cover_every_status() -> None:
    assert present.status_text(_row(status="removing")) == "Removal In Progress"
    assert present.status_text(_row(status="dead")) == "Dead"
    assert present.status_text(_row(finished_at=0.0)) == "Exited (3)"
    assert present.status_text(_row(status="restarting", exit_code=1), now=1075.0) == (
        "Restarting (1) 5 seconds ago"
    )


def test_summary_is_the_apis_and_ps_shows_it() -> None:
    from portique.cli.docker.commands import ps

    summary = present.summary(_row())
    assert summary["Names"] == ["/web"]
    assert summary["Command"] == "sh -c echo hello world and more"
    assert summary["Created"] == 1000
    assert (summary["State"], summary["Ports"]) == ("exited", [])
    r = ps.row(summary)
    assert r["ID"] == "a" * 12
    assert r["Command"] == '"sh -c echo hello wo…"'
    assert ps.row(summary, no_trunc=True)["Command"] == '"sh -c echo hello world and more"'
    assert r["Labels"] == "tier=front"
    assert r["Mounts"] == "v1"
    assert r["LocalVolumes"] == "1"


def test_published_ports_of_a_running_container() -> None:
    from portique.cli.docker.commands import ps

    settings = {"Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}}
    row = _row(status="running", pid=7, config={**_row().config, "NetworkSettings": settings})
    assert present.summary(row)["Ports"] == [
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
    ]
    assert ps.row(present.summary(row))["Ports"] == "127.0.0.1:8080->80/tcp"
    assert present.summary(_row(config=row.config))["Ports"] == []  # exited: none published


def test_filters(tmp_path: Path) -> None:
    f = {"status": ["exited"], "label": ["tier=front"], "name": ["we"]}
    assert present.matches(_row(), f, {})
    assert not present.matches(_row(status="running"), f, {})
    assert present.matches(_row(), {"exited": ["3"], "volume": ["v1"], "ancestor": ["busybox"]}, {})
    assert not present.matches(_row(), {"exited": ["0"]}, {})
    assert present.matches(_row(), {"exited": ["0", "3"]}, {})  # values of one key: any
    eng = Engine(tmp_path / "root", tmp_path / "run")
    with pytest.raises(InvalidArgument, match="invalid filter 'color'"):
        containers.list_containers(eng, filters={"color": ["red"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'status=sleeping'"):
        containers.list_containers(eng, filters={"status": ["sleeping"]})


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
