"""The event record and its reader (engine/eventlog.py, engine/events.py):
Docker's filters and formats, the record's bounds, concurrent writers, the
monitor's json-free records, and following across a rotation."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from portique.engine import db, dblite, eventlog, events
from portique.engine.events import Event, matches
from portique.errors import InvalidArgument

CID = "a" * 64


def _ev(kind: str = "container", action: str = "start", actor: str = CID, **attrs: str) -> Event:
    return Event(kind, action, actor, attrs, 1_765_000_000_123_456_789)


# ------------------------------------------------------------------ formats


def test_line_is_dockers_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    ev = _ev(name="web", image="busybox", exitCode="0", action="die")
    assert ev.line() == (
        f"2025-12-06T05:46:40.123456789Z container die {CID} (exitCode=0, image=busybox, name=web)"
    )
    assert _ev("network", "create", "n1").line().endswith(" network create n1")


def test_line_in_a_zone_east_of_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert _ev().line().startswith("2025-12-06T11:16:40.123456789+05:30 ")
    finally:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()


def test_to_api_has_legacy_fields_for_containers_and_images() -> None:
    api = _ev(image="busybox", name="web").to_api()
    assert list(api) == [
        "status",
        "id",
        "from",
        "Type",
        "Action",
        "Actor",
        "scope",
        "time",
        "timeNano",
    ]
    assert (api["status"], api["id"], api["from"]) == ("start", CID, "busybox")
    assert api["time"] == 1_765_000_000
    assert api["timeNano"] == 1_765_000_000_123_456_789
    img = _ev("image", "tag", "sha256:x", name="a:b").to_api()
    assert (img["status"], img["id"]) == ("tag", "sha256:x")
    assert "from" not in img
    net = _ev("network", "connect", "n", container=CID, name="net", type="bridge").to_api()
    assert "status" not in net
    assert "id" not in net
    assert net["Actor"] == {
        "ID": "n",
        "Attributes": {"container": CID, "name": "net", "type": "bridge"},
    }


def test_encode_decode_round_trip() -> None:
    ev = _ev(name="w\u00e9b", image="b")
    back = Event.decode(ev.encode())
    assert back is not None
    assert back.to_api() == ev.to_api()
    for junk in (
        b"",
        b"{",
        b"[]",
        b'{"Type":"x"}',
        b'{"Type":"c","Action":"a","Actor":{"ID":"i","Attributes":[]},"timeNano":1}',
    ):
        assert Event.decode(junk) is None


def test_container_line_without_json_is_a_record() -> None:
    attrs = '{"tier":"a \\"quoted\\" value","image":"busybox","name":"web"}'
    line = eventlog.container_line(CID, "die", attrs, 5_000_000_001, exitCode="137")
    obj = json.loads(line)
    assert obj["Actor"]["Attributes"] == {
        "exitCode": "137",
        "tier": 'a "quoted" value',
        "image": "busybox",
        "name": "web",
    }
    assert (obj["time"], obj["timeNano"], obj["Action"]) == (5, 5_000_000_001, "die")
    assert json.loads(eventlog.container_line(CID, "oom", "{}", 1))["Actor"]["Attributes"] == {}
    with pytest.raises(ValueError, match="not a plain attribute"):
        eventlog.container_line(CID, "die", "{}", 1, exitCode='1","x":"y')
    unmount = json.loads(eventlog.volume_unmount_line("vol_1.a-b", CID, 7))
    assert unmount["Actor"] == {
        "ID": "vol_1.a-b",
        "Attributes": {"container": CID, "driver": "local"},
    }


def test_dblite_event_attributes(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path)
    row = db.ContainerRow(
        id=CID, name="web", image="busybox", image_id="sha256:" + "0" * 64, created=1.0,
        config={"Config": {"Labels": {"tier": "front", "image": "label's"}}, "HostConfig": {}},
    )  # fmt: skip
    db.insert_container(conn, row)
    db.insert_volume(conn, db.VolumeRow("v1", "local", "/v", 1.0, {}, {}, False))
    db.link_volume(conn, CID, "v1")
    lite = dblite.connect(str(tmp_path))
    attrs = dblite.event_attributes(lite, CID)
    assert attrs is not None
    # The image attribute wins over a label of that name, as in dockerd.
    assert json.loads(attrs) == {"tier": "front", "image": "busybox", "name": "web"}
    assert dblite.volumes_of(lite, CID) == ["v1"]
    assert dblite.event_attributes(lite, "b" * 64) is None


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("filters", "event", "expected"),
    [
        ({}, _ev(), True),
        ({"type": ["container"]}, _ev(), True),
        ({"type": ["image"]}, _ev(), False),
        ({"event": ["start", "die"]}, _ev(), True),
        ({"event": ["stop"]}, _ev(), False),
        # health_status, exec_create, exec_start: prefixes (moby #25798).
        ({"event": ["health_status"]}, _ev(action="health_status: healthy"), True),
        ({"event": ["exec_start"]}, _ev(action="exec_start: sh -c true"), True),
        ({"event": ["exec_die"]}, _ev(action="exec_die"), True),
        ({"event": ["die"]}, _ev(action="health_status: healthy"), False),
        ({"container": ["web"]}, _ev(name="web"), True),
        ({"container": [CID[:12]]}, _ev(name="web"), True),
        ({"container": ["db"]}, _ev(name="web"), False),
        # A container filter keeps container events only.
        ({"container": ["web"]}, _ev("network", "connect", "n", container=CID, name="web"), False),
        ({"network": ["net1"]}, _ev("network", "connect", "nid", name="net1"), True),
        ({"network": ["nid"]}, _ev("network", "connect", "nid", name="net1"), True),
        ({"network": ["net1"]}, _ev(name="net1"), False),
        ({"volume": ["v1"]}, _ev("volume", "mount", "v1", container=CID), True),
        ({"volume": ["v2"]}, _ev("volume", "mount", "v1"), False),
        ({"image": ["busybox"]}, _ev(image="busybox:latest"), True),
        ({"image": ["busybox:latest"]}, _ev(image="busybox:latest"), True),
        ({"image": ["alpine"]}, _ev(image="busybox"), False),
        ({"image": ["a:b"]}, _ev("image", "tag", "sha256:1", name="a:b"), True),
        ({"image": ["sha256:1"]}, _ev("image", "tag", "sha256:1", name="a:b"), True),
        ({"label": ["tier=front"]}, _ev(tier="front"), True),
        ({"label": ["tier"]}, _ev(tier="back"), True),
        ({"label": ["tier=front", "app"]}, _ev(tier="front"), False),
        ({"type": ["container"], "event": ["start"], "container": ["web"]}, _ev(name="web"), True),
        ({"scope": ["swarm"]}, _ev(), False),
    ],
)
def test_matches(filters: dict[str, list[str]], event: Event, expected: bool) -> None:
    assert matches(event, events.check_filters(filters)) is expected


def test_filter_refusals_in_dockers_words() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'colour'$"):
        events.check_filters({"colour": ["blue"]})
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'type=box'$"):
        events.check_filters({"type": ["box"]})


# ------------------------------------------------------------------ the record


def test_record_and_read_since_until(tmp_path: Path) -> None:
    a = events.record(tmp_path, "container", "create", CID, {"name": "x"})
    b = events.record(tmp_path, "container", "start", CID, {"name": "x"})
    c = events.record(tmp_path, "volume", "create", "v", {"driver": "local"})
    read = list(events.read(tmp_path, since_ns=0, until_ns=time.time_ns()))
    assert [e.action for e in read] == ["create", "start", "create"]
    assert [e.action for e in events.read(tmp_path, b.time_ns, c.time_ns - 1)] == ["start"]
    assert [
        e.type for e in events.read(tmp_path, a.time_ns, time.time_ns(), {"type": ["volume"]})
    ] == ["volume"]
    assert (tmp_path / "events").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "events" / "events.log").stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidArgument, match="cannot be after"):
        list(events.read(tmp_path, since_ns=2, until_ns=1))


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    events.record(tmp_path, "container", "create", CID, {})
    with open(tmp_path / "events" / "events.log", "ab") as f:
        f.write(b'not json\n{"half":')
    got = list(events.read(tmp_path, 0, time.time_ns()))
    assert [e.action for e in got] == ["create"]


def test_an_oversized_record_loses_its_labels(tmp_path: Path) -> None:
    labels = {f"l{i}": "x" * 1000 for i in range(100)}
    events.record(tmp_path, "container", "create", CID, {**labels, "name": "big", "image": "b"})
    (ev,) = events.read(tmp_path, 0, time.time_ns())
    assert ev.attributes == {"name": "big", "image": "b"}
    assert not eventlog.append_line(str(tmp_path), b"x" * eventlog.MAX_RECORD + b"\n")
    assert not eventlog.append_line(str(tmp_path), b"no newline")


def test_rotation_bounds_the_record(tmp_path: Path) -> None:
    line = _ev().encode()
    limit = 50 * len(line)
    for _ in range(1000):
        assert eventlog.append_line(str(tmp_path), line, max_bytes=limit)
    current, previous = eventlog.paths(str(tmp_path))
    assert os.path.getsize(current) <= limit + len(line)
    assert os.path.getsize(previous) <= limit + len(line)
    assert sorted(os.listdir(tmp_path / "events")) == ["events.log", "events.log.1", "rotate.lock"]
    # Both generations are read, the older first.
    n = len(list(events.read(tmp_path, 0, time.time_ns())))
    assert n == (os.path.getsize(current) + os.path.getsize(previous)) // len(line)


def _writer(root: str, n: int, tag: int, limit: int) -> None:
    for i in range(n):
        ev = Event(
            "container", "start", f"{tag:02d}-{i:05d}", {"pad": "p" * (tag * 37)}, time.time_ns()
        )
        eventlog.append_line(root, ev.encode(), max_bytes=limit)


def test_concurrent_writers_never_tear_or_lose_a_record(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 400, t, 1 << 30)) for t in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    raw = (tmp_path / "events" / "events.log").read_bytes().splitlines()
    assert len(raw) == 8 * 400
    ids = {Event.decode(r).actor_id for r in raw}  # type: ignore[union-attr]
    assert ids == {f"{t:02d}-{i:05d}" for t in range(8) for i in range(400)}


def test_concurrent_writers_rotate_once_per_crossing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    limit = 20_000
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 300, t, limit)) for t in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    current, previous = eventlog.paths(str(tmp_path))
    for path in (current, previous):
        data = Path(path).read_bytes()
        # Every line whole, and no generation far beyond its bound.
        assert all(Event.decode(r) is not None for r in data.splitlines())
        assert len(data) < 2 * limit


def test_follow_sees_new_records_across_a_rotation(tmp_path: Path) -> None:
    root = str(tmp_path)
    events.record(tmp_path, "container", "create", CID, {})  # before: not streamed
    got: list[str] = []
    done = threading.Event()

    def follow() -> None:
        for ev in events.read(tmp_path, poll=0.01, stop=done.is_set):
            got.append(ev.actor_id)
            if len(got) == 30:
                done.set()

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.2)  # the reader has opened the record (this test is about rotation)
    line_len = len(_ev().encode())
    for i in range(30):
        ev = Event("container", "start", f"n{i:02d}", {}, time.time_ns())
        eventlog.append_line(root, ev.encode(), max_bytes=5 * line_len)
        time.sleep(0.02)
    t.join(30)
    done.set()
    assert got == [f"n{i:02d}" for i in range(30)]


def test_until_ahead_ends_the_stream(tmp_path: Path) -> None:
    until = time.time_ns() + 300_000_000
    start = time.monotonic()
    assert list(events.read(tmp_path, None, until, poll=0.01)) == []
    assert time.monotonic() - start < 30


def test_without_inotify_a_follower_polls(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "root"
    not_a_dir.write_text("")  # no events/ can be made (nor watched) below it
    until = time.time_ns() + 200_000_000
    assert list(events.read(not_a_dir, None, until, poll=0.01)) == []


def test_inotify_watch_reports_appends(tmp_path: Path) -> None:
    import select

    from portique.linux.inotify import drain, watch_directory

    fd = watch_directory(str(tmp_path))
    try:
        assert select.select([fd], [], [], 0)[0] == []
        (tmp_path / "f").write_text("x")
        assert select.select([fd], [], [], 30)[0] == [fd]
        drain(fd)
        assert select.select([fd], [], [], 0)[0] == []
    finally:
        os.close(fd)
