"""Docker's events: recorded by the process that causes them, read back by any face.

    events.container(eng, row, "start")                  # the CLI, after a start
    events.record(eng.root, "network", "connect", net_id, {"container": cid, ...})
    for ev in events.read(eng, since_ns=..., until_ns=..., filters={"event": ["die"]}):
        print(ev.line())        # portique events
        yield ev.to_api()       # GET /events (the API face)

The record is engine/eventlog.py (an append-only file of JSON lines, two
bounded generations). A record holds the API's message without its legacy
fields: {"Type", "Action", "Actor": {"ID", "Attributes"}, "scope", "time",
"timeNano"}; `Event.to_api` adds `status`, `id` and `from` for container
and image events, as dockerd does.

`read` is Docker's subscription: with neither `since` nor `until` only the
events to come; with `since` the recorded ones from then on, then the new
ones; with an `until` in the past only recorded ones; with an `until` ahead,
the stream ends at that time. It follows the file across a rotation,
woken by inotify on the record's directory (linux/inotify.py), or where
that cannot be had by a cheap poll (a stat and a read every POLL seconds);
never a busy loop.

Attribute sets are dockerd's: a container's labels plus `image` and `name`
for container events (`exitCode` on die and exec_die, `signal` on kill,
`oldName` on rename, `execID` on exec events); image events carry `name`
(and the image's labels); network events `name`, `type` (and `container` on
connect/disconnect); volume events `driver` (and `container`, `destination`,
`read/write`, `propagation` on mount).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from portique.engine import eventlog
from portique.engine.filters import Filters, check

if TYPE_CHECKING:
    from portique.engine.db import ContainerRow
    from portique.engine.engine import Engine

POLL = 0.1  # seconds between looks at the record while following, without inotify
WAKE = 1.0  # with inotify: a look at least this often all the same (and `stop` asked)
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "node", "service")
FILTER_KEYS = ("container", "image", "network", "volume", "type", "event", "label", "scope")
# Docker matches these `event=` values as prefixes (moby #25798): their
# actions carry a suffix ("health_status: healthy", "exec_start: sh -c ...").
_FUZZY_EVENTS = frozenset({"health_status", "exec_create", "exec_start"})

__all__ = [
    "FILTER_KEYS",
    "Event",
    "check_filters",
    "container",
    "container_attributes",
    "image",
    "matches",
    "network",
    "read",
    "record",
    "volume",
]


class Event:
    """One event as recorded: Docker's events.Message without legacy fields."""

    __slots__ = ("action", "actor_id", "attributes", "scope", "time_ns", "type")

    def __init__(
        self,
        type: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str],
        time_ns: int,
        scope: str = "local",
    ) -> None:
        self.type = type
        self.action = action
        self.actor_id = actor_id
        self.attributes = dict(attributes)
        self.time_ns = time_ns
        self.scope = scope

    def __repr__(self) -> str:
        return f"Event({self.type} {self.action} {self.actor_id} {self.attributes})"

    def to_api(self) -> dict[str, Any]:
        """The API's JSON message (GET /events), in dockerd's field order."""
        out: dict[str, Any] = {}
        if self.type in ("container", "image"):
            out["status"] = self.action
            out["id"] = self.actor_id
            if self.type == "container" and self.attributes.get("image"):
                out["from"] = self.attributes["image"]
        out["Type"] = self.type
        out["Action"] = self.action
        out["Actor"] = {"ID": self.actor_id, "Attributes": dict(sorted(self.attributes.items()))}
        out["scope"] = self.scope
        out["time"] = self.time_ns // 1_000_000_000
        out["timeNano"] = self.time_ns
        return out

    def line(self) -> str:
        """docker events' default line (without the newline)."""
        text = f"{format_time(self.time_ns)} {self.type} {self.action} {self.actor_id}"
        if self.attributes:
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
            text += f" ({attrs})"
        return text

    def encode(self) -> bytes:
        """The record's line."""
        msg = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": self.attributes},
            "scope": self.scope,
            "time": self.time_ns // 1_000_000_000,
            "timeNano": self.time_ns,
        }
        return json.dumps(msg, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Event | None:
        """A record's line, or None for one that is not a record."""
        try:
            obj = json.loads(line)
            actor = obj["Actor"]
            attrs = actor.get("Attributes")
            attrs = {} if attrs is None else attrs
            if not isinstance(attrs, dict):
                return None
            return cls(
                str(obj["Type"]),
                str(obj["Action"]),
                str(actor["ID"]),
                {str(k): str(v) for k, v in attrs.items()},
                int(obj["timeNano"]),
                str(obj.get("scope") or "local"),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def format_time(ns: int) -> str:
    """Go's RFC3339NanoFixed in local time: 2026-12-05T14:00:00.000000000Z."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.localtime(secs)
    off = t.tm_gmtoff or 0
    zone = (
        "Z"
        if off == 0
        else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    )
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}{zone}"


# ------------------------------------------------------------------ recording


def record(
    root: os.PathLike[str] | str,
    type: str,
    action: str,
    actor_id: str,
    attributes: Mapping[str, str],
) -> Event:
    """Record one event now; never raises for the record's sake."""
    ev = Event(type, action, actor_id, {k: str(v) for k, v in attributes.items()}, time.time_ns())
    line = ev.encode()
    if len(line) > eventlog.MAX_RECORD:
        # Labels are the unbounded part: the event is kept without them.
        core = {k: v for k, v in ev.attributes.items() if k in _CORE}
        ev = Event(type, action, actor_id, core, ev.time_ns)
        line = ev.encode()[: eventlog.MAX_RECORD - 1].rstrip(b"\n") + b"\n"
    eventlog.append_line(str(root), line)
    return ev


_CORE = frozenset(
    {"name", "image", "exitCode", "signal", "oldName", "execID", "container", "type", "driver"}
)


def container_attributes(name: str, image: str, labels: Mapping[str, Any] | None) -> dict[str, str]:
    """A container event's attributes: its labels, `image` and `name` (dockerd's)."""
    out = {str(k): str(v) for k, v in (labels or {}).items()}
    out["image"] = image
    out["name"] = name
    return out


def container(eng: Engine, row: ContainerRow, action: str, **extra: str) -> Event:
    cfg = row.config.get("Config") or {}
    attrs = container_attributes(row.name, row.image, cfg.get("Labels"))
    attrs.update(extra)
    return record(eng.root, "container", action, row.id, attrs)


def image(
    eng: Engine, actor_id: str, name: str, action: str, labels: Mapping[str, Any] | None = None
) -> Event:
    attrs = {str(k): str(v) for k, v in (labels or {}).items()}
    attrs["name"] = name
    return record(eng.root, "image", action, actor_id, attrs)


def image_labels(record: Any) -> dict[str, str]:
    """An image record's labels (for its events), {} when it has none."""
    conf = getattr(record, "config", None)
    inner = conf.get("config") if isinstance(conf, dict) else None
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def image_record(eng: Engine, record: Any, action: str, name: str = "") -> Event:
    """An event whose actor is the image's id (tag, untag, delete, import, load,
    save): `name` the new tag for `tag`, else the id, as dockerd."""
    return image(eng, record.id, name or record.id, action, image_labels(record))


def pulled(eng: Engine, ref: Any, record: Any, action: str = "pull") -> Event:
    """`pull` or `push` of reference `ref` (an oci Reference): the actor is its
    familiar form (busybox:latest), `name` its familiar name (busybox)."""
    return image(eng, ref.familiar(), ref.familiar_name(), action, image_labels(record))


def network(eng: Engine, net_id: str, name: str, action: str, **extra: str) -> Event:
    attrs = {"name": name, "type": extra.pop("type", "bridge"), **extra}
    return record(eng.root, "network", action, net_id, attrs)


def volume(eng: Engine, name: str, action: str, **extra: str) -> Event:
    attrs = {"driver": extra.pop("driver", "local"), **extra}
    return record(eng.root, "volume", action, name, attrs)


# ------------------------------------------------------------------ filtering


def check_filters(filters: Filters | None) -> dict[str, list[str]]:
    """Docker's event filters, checked with its words."""
    out = check(filters, FILTER_KEYS)
    for t in out.get("type", ()):
        if t not in TYPES:
            from portique.errors import InvalidArgument

            raise InvalidArgument(f"invalid filter 'type={t}'")
    return out


def _exact(values: Sequence[str] | None, *sources: str) -> bool:
    return not values or any(s in values for s in sources)


def _fuzzy(values: Sequence[str] | None, *sources: str) -> bool:
    if not values:
        return True
    return any(s and (s in values or any(s.startswith(v) for v in values)) for s in sources)


def _strip_tag(ref: str) -> str:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if "@" in ref:
        return ref.split("@", 1)[0]
    return ref[:colon] if colon > slash else ref


def matches(ev: Event, filters: Mapping[str, Sequence[str]]) -> bool:
    """dockerd's events filter: every key must match, any value of a key
    (label: every value)."""
    f = filters
    attrs = ev.attributes
    wanted = f.get("event")
    if wanted and any(w in _FUZZY_EVENTS for w in wanted):
        if not _fuzzy(wanted, ev.action):
            return False
    elif not _exact(wanted, ev.action):
        return False
    if not _exact(f.get("type"), ev.type) or not _exact(f.get("scope"), ev.scope):
        return False
    for kind in ("container", "volume", "network"):
        if f.get(kind) and not (
            ev.type == kind and _fuzzy(f[kind], ev.actor_id, attrs.get("name", ""))
        ):
            return False
    if f.get("image"):
        name = attrs.get("name" if ev.type == "image" else "image", "")
        if not _exact(f["image"], ev.actor_id, name, _strip_tag(ev.actor_id), _strip_tag(name)):
            return False
    if f.get("label"):
        from portique.engine.filters import labels_match

        if not labels_match(attrs, f["label"]):
            return False
    return True


# -------------------------------------------------------------------- reading


class _Tail:
    """Whole lines appended to one file, read as they come."""

    def __init__(self, path: str, *, at_end: bool) -> None:
        self.path = path
        self.fd = -1
        self.ino: tuple[int, int] | None = None
        self.buf = b""
        self._open(at_end)

    def _open(self, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return
        st = os.fstat(fd)
        self.fd, self.ino, self.buf = fd, (st.st_dev, st.st_ino), b""
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def lines(self) -> Iterator[bytes]:
        """What was appended since the last call; across a rotation, the rest
        of the old file, then the new file from its start."""
        if self.fd < 0:
            self._open(False)
            if self.fd < 0:
                return
        yield from self._drain()
        try:
            st = os.stat(self.path, follow_symlinks=False)
            moved = (st.st_dev, st.st_ino) != self.ino
        except FileNotFoundError:
            moved = False  # rotated, its successor not made yet
        if moved:
            yield from self._drain()  # what writers appended before the rename
            self.close()
            self._open(False)
            if self.fd >= 0:
                yield from self._drain()

    def _drain(self) -> Iterator[bytes]:
        for _ in range(1 << 20):
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return
            data = self.buf + chunk
            cut = data.rfind(b"\n") + 1
            self.buf = data[cut:]
            if len(self.buf) > eventlog.MAX_RECORD:
                self.buf = b""  # not a record: skip it
            yield from data[:cut].splitlines()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read(
    eng: Engine | os.PathLike[str] | str,
    since_ns: int | None = None,
    until_ns: int | None = None,
    filters: Filters | None = None,
    follow: bool | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    poll: float = POLL,
) -> Iterator[Event]:
    """The events matching `filters` (Docker's map, checked first), Docker's way
    (see the module docstring). `follow`: None is Docker's rule (stream unless
    `until` has passed); `stop`: asked at each poll, ends the stream."""
    from portique.engine.engine import Engine

    root = str(eng.root if isinstance(eng, Engine) else eng)
    wanted = check_filters(filters)
    if since_ns is not None and until_ns is not None and until_ns < since_ns:
        from portique.errors import InvalidArgument

        raise InvalidArgument("`since` time cannot be after `until` time")
    now = time.time_ns()
    if follow is None:
        follow = until_ns is None or until_ns > now
    current, previous = eventlog.paths(root)
    past = since_ns is not None or until_ns is not None
    lower = since_ns or 0

    def keep(ev: Event | None) -> bool:
        return (
            ev is not None
            and ev.time_ns >= lower
            and (until_ns is None or ev.time_ns <= until_ns)
            and matches(ev, wanted)
        )

    tail = _Tail(current, at_end=not past)
    waker = _Waker(os.path.dirname(current)) if follow else None
    try:
        if past:
            old = _Tail(previous, at_end=False)
            try:
                if old.ino != tail.ino:
                    for raw in old.lines():
                        ev = Event.decode(raw)
                        if keep(ev):
                            yield ev  # type: ignore[misc]
            finally:
                old.close()
        for _ in range(1 << 62):
            for raw in tail.lines():
                ev = Event.decode(raw)
                if keep(ev):
                    yield ev  # type: ignore[misc]
            if not follow or (stop is not None and stop()):
                return
            now = time.time_ns()
            if until_ns is not None and now > until_ns:
                follow = False  # one last look for what was recorded until then
                continue
            wait = poll if waker is None or waker.fd < 0 else WAKE
            if until_ns is not None:
                wait = min(wait, (until_ns - now) / 1e9 + 0.001)
            if waker is not None:
                waker.wait(wait)
            else:
                time.sleep(wait)
    finally:
        tail.close()
        if waker is not None:
            waker.close()


class _Waker:
    """Sleeps until the record's directory changes (inotify), or a timeout."""

    def __init__(self, directory: str) -> None:
        self.fd = -1
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            from portique.linux.inotify import watch_directory

            self.fd = watch_directory(directory)
        except OSError:
            self.fd = -1  # a timer then

    def wait(self, timeout: float) -> None:
        if self.fd < 0:
            time.sleep(max(0.0, timeout))
            return
        import select

        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if ready:
            from portique.linux.inotify import drain

            drain(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
