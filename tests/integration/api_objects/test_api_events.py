"""`GET /events` through `portique serve`: what the engine records (by the CLI,
the monitors and the API alike) read back by the docker CLI and raw HTTP,
following new events, bounded by since/until, filtered; a client that goes
away leaves no worker behind."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from support.api_server import DOCKER, ApiServer

pytestmark = pytest.mark.compat

DEADLINE = 60.0


def _now_ns() -> int:
    return time.time_ns()


def _secs(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        out |= {int(p) for p in text.split()}
    return out


def test_recorded_events_with_since_until_and_filters(srv: ApiServer) -> None:
    t0 = _now_ns()
    srv.docker("volume", "create", "evvol", check=True)
    srv.docker("network", "create", "evnet", check=True)
    srv.docker("tag", "busybox", "evtag:1", check=True)
    srv.pq.ok("run", "--rm", "--name", "evrun", "busybox", "true")
    srv.docker("network", "rm", "evnet", check=True)
    srv.docker("volume", "rm", "evvol", check=True)
    srv.docker("rmi", "evtag:1", check=True)
    t1 = _now_ns()
    status, headers, body = srv.request("GET", f"/events?since={_secs(t0)}&until={_secs(t1)}")
    assert status == 200
    assert headers["content-type"] == "application/json"
    msgs = [json.loads(line) for line in body.splitlines()]
    seen = [(m["Type"], m["Action"]) for m in msgs]
    for want in [
        ("volume", "create"),
        ("network", "create"),
        ("image", "tag"),
        ("container", "create"),
        ("container", "start"),
        ("container", "die"),
        ("container", "destroy"),
        ("network", "destroy"),
        ("volume", "destroy"),
        ("image", "untag"),
    ]:
        assert want in seen, (want, seen)
    die = next(m for m in msgs if m["Action"] == "die")
    assert die["status"] == "die"
    assert die["id"] == die["Actor"]["ID"]
    assert die["from"] == "busybox"
    assert die["Actor"]["Attributes"]["name"] == "evrun"
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["scope"] == "local"
    assert t0 <= die["timeNano"] <= t1
    assert die["time"] == die["timeNano"] // 1_000_000_000
    # Filters, through the docker CLI (which sends since/until as Unix times).
    cli = srv.docker(
        "events",
        "--since",
        _secs(t0),
        "--until",
        _secs(t1),
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
        check=True,
    )
    assert cli.stdout.splitlines() == ["volume create evvol", "volume destroy evvol"]
    plain = srv.docker(
        "events", "--since", _secs(t0), "--until", _secs(t1), "--filter", "event=tag", check=True
    )
    assert "image tag" in plain.stdout
    assert "name=evtag:1" in plain.stdout


def test_follow_then_client_goes_away(srv: ApiServer) -> None:
    assert srv.proc is not None
    idle = _children(srv.proc.pid)
    n = 0
    with subprocess.Popen(
        [DOCKER, "events", "--filter", "type=volume", "--format", "{{json .}}"],
        env=srv.docker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    ) as proc:
        try:
            assert proc.stdout is not None
            # The subscription starts when the request arrives: keep making volumes
            # until one is seen (no guessed sleep).
            os.set_blocking(proc.stdout.fileno(), False)
            got = b""
            deadline = time.monotonic() + DEADLINE
            while b"\n" not in got and time.monotonic() < deadline:
                n += 1
                srv.docker("volume", "create", f"follow{n}", check=True)
                for _ in range(20):
                    chunk = proc.stdout.read() or b""
                    got += chunk
                    if b"\n" in got:
                        break
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert b"\n" in got
    first = json.loads(got.splitlines()[0])
    assert first["Type"] == "volume"
    assert first["Action"] == "create"
    assert first["Actor"]["ID"].startswith("follow")
    for i in range(1, n + 1):
        srv.docker("volume", "rm", f"follow{i}", check=True)
    # The worker that served the stream notices and exits.
    deadline = time.monotonic() + DEADLINE
    while _children(srv.proc.pid) - idle and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children(srv.proc.pid) - idle


def test_until_ahead_ends_the_stream(srv: ApiServer) -> None:
    start = _now_ns()
    until = start + 1_500_000_000
    status, _h, body = srv.request(
        "GET",
        f"/events?since={_secs(start)}&until={_secs(until)}"
        "&filters=%7B%22type%22%3A%5B%22volume%22%5D%7D",
    )
    assert status == 200
    assert _now_ns() >= until
    assert body == b""


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday-ish",
        "until=12x",
        "filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        "filters=%7B%22type%22%3A%5B%22spaceship%22%5D%7D",
        "filters=nope",
        "since=200&until=100",
    ],
)
def test_bad_event_queries_are_400(srv: ApiServer, query: str) -> None:
    status, _h, body = srv.request("GET", f"/events?{query}", timeout=30)
    assert status == 400, (status, body)
    assert json.loads(body)["message"]
