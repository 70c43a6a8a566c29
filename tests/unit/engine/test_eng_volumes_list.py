"""Volume listing and its filters, as `volume ls` and `GET /volumes` get them (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portique.engine import db, volumes
from portique.engine.engine import Engine
from portique.errors import InvalidArgument, NoSuchObject


@pytest.fixture
def eng(tmp_path: Path) -> Engine:
    e = Engine(tmp_path / "root", tmp_path / "run")
    volumes.create(e, "web-data", labels={"tier": "front"})
    volumes.create(e, "db-data", labels={"tier": "back", "keep": ""})
    volumes.create(e, "spare")
    cid = "c" * 64
    db.insert_container(
        e.db,
        db.ContainerRow(
            id=cid,
            name="user",
            image="b",
            image_id="sha256:" + "0" * 64,
            created=1.0,
            config={"Config": {}, "HostConfig": {}},
        ),
    )
    db.link_volume(e.db, cid, "web-data")
    return e


def names(listed: list[dict[str, object]]) -> list[object]:
    return [v["Name"] for v in listed]


def test_list_is_by_name_in_dockers_shape(eng: Engine) -> None:
    listed = volumes.list_volumes(eng)
    assert names(listed) == ["db-data", "spare", "web-data"]
    assert set(listed[0]) == {
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    }
    assert listed[1]["Labels"] is None  # Docker's null for no labels


def test_volumes_in_use(eng: Engine) -> None:
    assert volumes.volumes_in_use(eng) == {"web-data"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"dangling": ["true"]}, ["db-data", "spare"]),
        ({"dangling": ["0"]}, ["web-data"]),
        ({"name": ["data"]}, ["db-data", "web-data"]),
        ({"name": ["web", "spare"]}, ["spare", "web-data"]),  # one key: any value
        ({"label": ["tier"]}, ["db-data", "web-data"]),
        ({"label": ["tier=back", "keep"]}, ["db-data"]),  # labels: every value
        ({"label": ["tier=front"], "dangling": ["true"]}, []),  # keys: all of them
        ({"driver": ["local"]}, ["db-data", "spare", "web-data"]),
    ],
)
def test_filters(eng: Engine, filters: dict[str, list[str]], expected: list[str]) -> None:
    assert names(volumes.list_volumes(eng, filters)) == expected


def test_bad_filters_are_dockers_errors(eng: Engine) -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        volumes.list_volumes(eng, {"colour": ["red"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        volumes.list_volumes(eng, {"dangling": ["maybe"]})


def test_inspect_and_remove_a_missing_volume(eng: Engine) -> None:
    assert volumes.inspect(eng, "spare")["Name"] == "spare"
    with pytest.raises(NoSuchObject) as exc:
        volumes.inspect(eng, "nosuch")
    assert (exc.value.kind, exc.value.ref) == ("volume", "nosuch")
    with pytest.raises(NoSuchObject):
        volumes.remove_volume(eng, "nosuch")
    volumes.remove_volume(eng, "nosuch", force=True)
