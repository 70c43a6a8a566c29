"""`portique events` (issue 13, item 3): Docker's actions and attributes, recorded
by the process that caused them (CLI, monitor), read back with --since/--until,
--filter and --format, and followed while they happen."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from support.engine_cli import Portique
from support.events_cli import Stream, now, recorded

LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9})(Z|[+-]\d\d:\d\d) (\w+) (\S+(?: \S+)*?) (\S+)(?: \((.*)\))?$"
)


def _actions(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        out.append(f"{m.group(3)} {m.group(4)}")
    return out


def test_run_rm_records_create_start_die_destroy(pq: Portique) -> None:
    since = now()
    r = pq("run", "--rm", "--name", "ev-rm", "--label", "tier=web", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3
    lines = recorded(pq, since, "--filter", "container=ev-rm", want="destroy")
    assert _actions(lines) == [
        "container create",
        "container attach",
        "container start",
        "container die",
        "container destroy",
    ]
    die = lines[3]
    # Docker's default line: time, type, action, actor id, sorted attributes.
    m = LINE.match(die)
    assert m is not None
    assert re.fullmatch(r"[0-9a-f]{64}", m.group(5))
    assert m.group(6) == "exitCode=3, image=busybox, name=ev-rm, tier=web"


def test_lifecycle_actions_and_their_attributes(pq: Portique) -> None:
    since = now()
    cid = pq.ok("run", "-d", "--name", "ev-life", "busybox", "sleep", "1000").strip()
    pq.ok("pause", cid)
    pq.ok("unpause", cid)
    pq.ok("rename", "ev-life", "ev-life2")
    pq.ok("kill", "-s", "USR1", cid)
    assert pq("exec", cid, "sh", "-c", "exit 4").returncode == 4
    pq.ok("stop", "-t", "0", cid)
    pq.ok("rm", cid)
    lines = recorded(pq, since, "--filter", f"container={cid[:12]}", want="destroy")
    acts = _actions(lines)
    execs = [a for a in acts if a.startswith("container exec")]
    assert execs == [
        "container exec_create: sh -c exit 4",
        "container exec_start: sh -c exit 4",
        "container exec_die",
    ]
    rest = [a for a in acts if not a.startswith("container exec")]
    assert rest[:6] == [
        "container create",
        "container start",
        "container pause",
        "container unpause",
        "container rename",
        "container kill",
    ]
    # stop -t 0: SIGTERM (which sleep, as PID 1, ignores), then SIGKILL, as dockerd.
    assert rest[6:] == [
        "container kill",
        "container kill",
        "container die",
        "container stop",
        "container destroy",
    ]
    by_action = {_actions([ln])[0]: ln for ln in lines}
    assert "name=ev-life2, oldName=/ev-life)" in by_action["container rename"]
    assert "signal=10" in lines[acts.index("container kill")]
    assert "exitCode=4" in by_action["container exec_die"]
    assert "execID=" in by_action["container exec_die"]
    assert (
        "exitCode=137" in by_action["container die"] or "exitCode=143" in by_action["container die"]
    )


def test_filters_as_docker(pq: Portique) -> None:
    since = now()
    pq.ok("volume", "create", "ev-vol")
    pq.ok("network", "create", "ev-net")
    pq.ok(
        "run", "--rm", "--name", "ev-f", "--label", "app=x", "--network", "ev-net",
        "-v", "ev-vol:/data", "busybox", "true",
    )  # fmt: skip
    pq.ok("network", "rm", "ev-net")
    pq.ok("volume", "rm", "ev-vol")
    recorded(pq, since, "--filter", "type=volume", want="volume destroy ev-vol")
    vol = _actions(recorded(pq, since, "--filter", "volume=ev-vol"))
    # dockerd tells `create` again when a container mounts an existing volume.
    assert vol == [
        "volume create",
        "volume create",
        "volume mount",
        "volume unmount",
        "volume destroy",
    ]
    net = recorded(pq, since, "--filter", "network=ev-net")
    assert _actions(net) == [
        "network create",
        "network connect",
        "network disconnect",
        "network destroy",
    ]
    assert "container=" in net[1]
    assert "name=ev-net" in net[1]
    assert "type=bridge" in net[1]
    mount = recorded(pq, since, "--filter", "volume=ev-vol", "--filter", "event=mount")
    assert len(mount) == 1
    assert "destination=/data" in mount[0]
    assert "read/write=true" in mount[0]
    # event: several values are alternatives; type and event together must both match.
    both = _actions(
        recorded(pq, since, "--filter", "event=die", "--filter", "event=start", "--filter", "type=container")
    )  # fmt: skip
    assert both == ["container start", "container die"]
    # label: every value must match.
    assert len(recorded(pq, since, "--filter", "label=app=x", "--filter", "event=create")) == 1
    assert recorded(pq, since, "--filter", "label=app=y") == []
    # image: the container's image.
    assert "container die" in _actions(recorded(pq, since, "--filter", "image=busybox"))
    r = pq("events", "--filter", "colour=blue")
    assert (r.returncode, r.stderr) == (125, "portique: invalid filter 'colour'\n")


def test_format_template_and_json(pq: Portique) -> None:
    since = now()
    pq.ok("run", "--rm", "--name", "ev-fmt", "busybox", "true")
    recorded(pq, since, "--filter", "container=ev-fmt", want="destroy")
    until = now()
    out = pq.ok(
        "events", "--since", since, "--until", until, "--filter", "container=ev-fmt",
        "--format", "{{.Type}} {{.Status}} {{.Action}} {{.Actor.Attributes.name}} {{.From}}",
    )  # fmt: skip
    assert out.splitlines()[0] == "container create create ev-fmt busybox"
    out = pq.ok(
        "events", "--since", since, "--until", until, "--filter", "event=die",
        "--filter", "container=ev-fmt", "--format", "{{json .}}",
    )  # fmt: skip
    msg = json.loads(out)
    assert list(msg) == [
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
    assert msg["status"] == msg["Action"] == "die"
    assert msg["Actor"]["Attributes"] == {"exitCode": "0", "image": "busybox", "name": "ev-fmt"}
    assert msg["id"] == msg["Actor"]["ID"]
    assert msg["scope"] == "local"
    assert msg["time"] == msg["timeNano"] // 1_000_000_000


def test_image_events(pq: Portique, tmp_path: object) -> None:
    since = now()
    image_id = pq.inspect("busybox", "{{.Id}}")
    pq.ok("tag", "busybox", "ev-tag:one")
    pq.ok("save", "-o", f"{tmp_path}/bb.tar", "ev-tag:one")
    pq.ok("rmi", "ev-tag:one")
    pq.ok("load", "-i", f"{tmp_path}/bb.tar")
    pq.ok("rmi", "ev-tag:one")
    lines = recorded(pq, since, "--filter", "type=image")
    acts = _actions(lines)
    assert acts[:4] == ["image tag", "image save", "image untag", "image load"]
    # One untag per reference dropped (the loaded image also has its repo digest).
    assert acts[4:]
    assert set(acts[4:]) == {"image untag"}
    assert lines[0].endswith(f"image tag {image_id} (name=ev-tag:one)")
    assert lines[2].endswith(f"image untag {image_id} (name={image_id})")
    assert _actions(recorded(pq, since, "--filter", "image=ev-tag:one")) == ["image tag"]


def test_follow_streams_until_interrupted(pq: Portique, stream: Callable[..., Stream]) -> None:
    # --since: what happens before the stream has opened the record is not missed.
    fmt = "{{.Action}} {{.Actor.Attributes.name}}"
    s = stream("--since", now(), "--filter", "type=container", "--format", fmt)
    pq.ok("run", "--rm", "--name", "ev-follow", "busybox", "true")
    seen = s.until(lambda line: line == "destroy ev-follow")
    assert seen == [
        "create ev-follow",
        "attach ev-follow",
        "start ev-follow",
        "die ev-follow",
        "destroy ev-follow",
    ]
    assert s.interrupt() in (0, 130, -2)


def test_until_in_the_future_ends_the_stream(pq: Portique) -> None:
    since = now()
    until = f"{time.time() + 2:.3f}"
    r = pq("events", "--since", since, "--until", until, "--filter", "type=container", timeout=60)
    assert r.returncode == 0
    assert r.stderr == ""


def test_since_after_until_is_refused(pq: Portique) -> None:
    r = pq("events", "--since", "100", "--until", "50")
    assert r.returncode == 125
    assert r.stderr.startswith("portique: `since` time")
    assert r.stderr.count("\n") == 1


def test_bad_times_are_refused_in_one_line(pq: Portique) -> None:
    for flag in ("--since", "--until"):
        r = pq("events", flag, "bogus")
        assert (r.returncode, r.stderr) == (125, f"portique: invalid value for {flag}: 'bogus'\n")
