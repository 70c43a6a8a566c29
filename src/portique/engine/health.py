"""Healthchecks: Docker's HEALTHCHECK, run for each container by its monitor.

    Config.Healthcheck = {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": ns,
                          "Timeout": ns, "Retries": n, "StartPeriod": ns, "StartInterval": ns}

The image's HEALTHCHECK and the `--health-*` flags merge as dockerd merges
them (`merge`: the user's fields win, zero fields come from the image;
`--no-healthcheck` is Test ["NONE"]). A container whose Test names a probe
gets one: its monitor (engine/monitor.py) starts a probe process on a timer
(`monitor_arg` says when) and never waits for it. The probe (`main`, a fresh
interpreter started from the monitor's own protected file) execs the test in
the container as `exec` does, with output to a pipe (the first 4096 bytes
kept), kills it at its timeout (exit code -1, "Health check exceeded timeout
(30s)", as dockerd), then records the result in the container's row:
`config.Health` = {"Status": starting|healthy|unhealthy, "FailingStreak",
"Log": the last 5 results with Start, End, ExitCode, Output}, by one
json_set statement, and a `health_status: <status>` event when the status
changed (with exec_create/exec_start/exec_die events, as dockerd's probes).
The monitor kills a probe that outlives its timeout by GRACE seconds.

dockerd's rules: a success makes the container healthy and clears the
failing streak; a failure adds to the streak, except while the container is
still starting and within its start period; `Retries` failures in a row make
it unhealthy. Each start resets the status to "starting" (`reset`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from portique.engine.db import ContainerRow
    from portique.engine.engine import Engine

DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_START_INTERVAL = 5_000_000_000
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
GRACE = 10.0  # seconds the monitor grants a probe beyond its timeout before SIGKILL
MIN_DURATION = 1_000_000  # dockerd: a set duration is at least 1ms

BOOT = (
    "import sys;sys.path[:0]=sys.argv[1].split('\\n');"
    "from portique.engine.health import main;main(sys.argv[2:])"
)

__all__ = [
    "BOOT",
    "check",
    "from_flags",
    "main",
    "merge",
    "monitor_arg",
    "probe_of",
    "reset",
    "status_of",
]


# ------------------------------------------------------------------ config


def from_flags(
    *,
    cmd: str = "",
    interval: str = "",
    timeout: str = "",
    retries: int | None = None,
    start_period: str = "",
    start_interval: str = "",
    none: bool = False,
) -> dict[str, Any] | None:
    """docker CLI's HealthConfig from the --health-* flags (None: none given)."""
    from portique.duration import parse_duration

    given = bool(cmd or interval or timeout or start_period or start_interval) or (
        retries is not None
    )
    if none:
        if given:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    # Docker's HealthConfig leaves zero fields out (omitempty).
    out: dict[str, Any] = {"Test": ["CMD-SHELL", cmd]} if cmd else {}
    for flag, key, text in (
        ("--health-interval", "Interval", interval),
        ("--health-timeout", "Timeout", timeout),
        ("--health-start-period", "StartPeriod", start_period),
        ("--health-start-interval", "StartInterval", start_interval),
    ):
        ns = parse_duration(text) if text else 0
        if ns < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
        if ns:
            out[key] = ns
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    if retries:
        out["Retries"] = retries
    return out


def check(hc: Mapping[str, Any] | None) -> None:
    """dockerd's checks of a container's Healthcheck (the API's words)."""
    if not hc:
        return
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = hc.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"{key} in Healthcheck must be an integer of nanoseconds")
        if value != 0 and value < MIN_DURATION:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = hc.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    test = hc.get("Test")
    if test is not None and (
        not isinstance(test, list) or not all(isinstance(w, str) for w in test)
    ):
        raise InvalidArgument("Test in Healthcheck must be a list of strings")


def merge(user: Mapping[str, Any] | None, image: Any) -> dict[str, Any] | None:
    """The container's Healthcheck: the user's, its empty fields from the image's."""
    img = dict(image) if isinstance(image, Mapping) else None
    if user is None:
        return img
    out = dict(user)
    if img is not None:
        if not out.get("Test") and img.get("Test"):
            out["Test"] = img["Test"]
        for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            if not out.get(key) and img.get(key):
                out[key] = img[key]
    return out


class Probe:
    """What the monitor and the probe need of a container's Healthcheck."""

    __slots__ = ("argv", "interval", "retries", "start_interval", "start_period", "timeout")

    def __init__(self, argv: list[str], hc: Mapping[str, Any]) -> None:
        self.argv = argv
        self.interval = int(hc.get("Interval") or 0) or DEFAULT_INTERVAL
        self.timeout = int(hc.get("Timeout") or 0) or DEFAULT_TIMEOUT
        self.start_period = int(hc.get("StartPeriod") or 0)
        self.start_interval = int(hc.get("StartInterval") or 0) or DEFAULT_START_INTERVAL
        self.retries = int(hc.get("Retries") or 0) or DEFAULT_RETRIES


def probe_of(config: Mapping[str, Any]) -> Probe | None:
    """The probe of Docker's Config, None when it has none (no Test, NONE)."""
    hc = config.get("Healthcheck")
    if not isinstance(hc, Mapping):
        return None
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        argv = [str(w) for w in test[1:]]
    elif test[0] == "CMD-SHELL":
        shell = config.get("Shell") or ["/bin/sh", "-c"]
        argv = [*map(str, shell), " ".join(str(w) for w in test[1:])]
    else:
        return None  # dockerd: "unknown healthcheck type"; nothing runs
    return Probe(argv, hc) if argv else None


def monitor_arg(config: Mapping[str, Any]) -> str:
    """The monitor's `health=` argument: interval:timeout:start_period:start_interval
    in ns, or "" for no probe."""
    p = probe_of(config)
    if p is None:
        return ""
    return f"{p.interval}:{p.timeout}:{p.start_period if p.start_period else 0}:{p.start_interval}"


# ------------------------------------------------------------------ state


def status_of(row: ContainerRow) -> str:
    """starting, healthy, unhealthy, or "" when the container has no probe or
    never started (dockerd's health "none")."""
    h = state_of(row)
    return "" if h is None else str(h["Status"])


def state_of(row: ContainerRow) -> dict[str, Any] | None:
    """inspect's State.Health, None when the container has no probe or never
    started (dockerd makes it at the first start)."""
    h = row.config.get("Health")
    if not isinstance(h, Mapping) or probe_of(row.config.get("Config") or {}) is None:
        return None
    return {
        "Status": str(h.get("Status") or "starting"),
        "FailingStreak": int(h.get("FailingStreak") or 0),
        "Log": list(h.get("Log") or []),
    }


def reset(config: Mapping[str, Any]) -> dict[str, Any]:
    """A start: "starting" again, the streak cleared, the log kept."""
    old = config.get("Health")
    log = list(old.get("Log") or []) if isinstance(old, Mapping) else []
    return {"Status": "starting", "FailingStreak": 0, "Log": log[-MAX_LOG:]}


def apply(health: Mapping[str, Any], result: Mapping[str, Any], probe: Probe, started_at: float,
          start_ns: int) -> dict[str, Any]:  # fmt: skip
    """dockerd's handleProbeResult: the Health after `result`."""
    status = str(health.get("Status") or "starting")
    streak = int(health.get("FailingStreak") or 0)
    log = [*list(health.get("Log") or []), dict(result)][-MAX_LOG:]
    if result["ExitCode"] == 0:
        status, streak = "healthy", 0
    else:
        within = status == "starting" and (start_ns / 1e9 - started_at) * 1e9 < probe.start_period
        if not within:
            streak += 1
            if streak >= probe.retries:
                status = "unhealthy"
    return {"Status": status, "FailingStreak": streak, "Log": log}


def _rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped)."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def go_duration(ns: int) -> str:
    """Go's Duration.String for whole units (30s, 1m30s, 500ms, 1.5s)."""
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    s = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{s}"
    return f"{m}m{s}" if m else s


# ------------------------------------------------------------------ the probe


def run_probe(eng: Engine, cid: str) -> None:
    """One probe of container `cid`: exec, record, tell (see the module docstring)."""
    from portique.engine import db, events
    from portique.engine import state as st
    from portique.engine.exec import ExecRequest, build_process
    from portique.errors import PortiqueError

    row = db.get_container(eng.db, cid)
    if row is None or row.status != st.Status.RUNNING or row.stop_requested:
        return  # gone, stopping, or paused: no probe now (dockerd skips it too)
    probe = probe_of(row.config.get("Config") or {})
    if probe is None:
        return
    exec_id = os.urandom(32).hex()
    words = " ".join(probe.argv)
    events.container(eng, row, f"exec_create: {words}", execID=exec_id)
    events.container(eng, row, f"exec_start: {words}", execID=exec_id)
    start = time.time_ns()
    try:
        process = build_process(eng, row, ExecRequest(argv=tuple(probe.argv)))
        code, output = _exec_captured(eng, cid, process, probe.timeout)
    except PortiqueError as exc:
        code, output = -1, str(exc)
    except OSError as exc:
        code, output = -1, exc.strerror or str(exc)
    end = time.time_ns()
    events.container(eng, row, "exec_die", execID=exec_id, exitCode=str(code))
    result = {
        "Start": _rfc3339(start),
        "End": _rfc3339(end),
        "ExitCode": code,
        "Output": output,
    }
    _record(eng, row, probe, result, start)


def _exec_captured(eng: Engine, cid: str, process: Any, timeout_ns: int) -> tuple[int, str]:
    """Run `process` with stdout and stderr into one pipe; (exit code, output),
    (-1, dockerd's words) when it outlived `timeout_ns` and was killed."""
    import signal
    import threading

    from portique.oci.value import replace

    r, w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    chunks: list[bytes] = []
    timed_out = threading.Event()
    pidfds: list[int] = []

    def read() -> None:
        kept = 0
        for _ in range(1 << 30):
            try:
                data = os.read(r, 65536)
            except OSError:
                return
            if not data:
                return
            if kept < MAX_OUTPUT:
                chunks.append(data[: MAX_OUTPUT - kept])
                kept += len(chunks[-1])

    def kill() -> None:
        timed_out.set()
        for fd in pidfds:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)

    reader = threading.Thread(target=read, daemon=True)
    timer = threading.Timer(timeout_ns / 1e9, kill)
    timer.daemon = True

    def on_pid(pid: int) -> None:
        # The runtime forks no more once it tells the pid: threads may start now.
        pidfds.append(os.pidfd_open(pid))
        os.close(w_box.pop())  # the process has its copy: EOF comes when it (and its heirs) end
        reader.start()
        timer.start()

    w_box = [w]
    try:
        code = int(
            eng.runtime().exec(
                cid, replace(process, terminal=False), stdio=(null, w, w), on_pid=on_pid
            )
        )
    finally:
        timer.cancel()
        for fd in [*w_box, *pidfds, null]:
            with contextlib.suppress(OSError):
                os.close(fd)
        if reader.is_alive():
            reader.join(1.0)  # what it left running may hold the pipe: we stop reading
        with contextlib.suppress(OSError):
            os.close(r)
    if timed_out.is_set():
        return -1, f"Health check exceeded timeout ({go_duration(timeout_ns)})"
    return code, b"".join(chunks).decode("utf-8", "replace")


def _record(
    eng: Engine, row: ContainerRow, probe: Probe, result: Mapping[str, Any], start_ns: int
) -> None:
    import json

    from portique.engine import db, events

    conn = eng.db
    with db.transaction(conn):
        cur = db.get_container(conn, row.id)
        if cur is None:
            return
        old = cur.config.get("Health")
        old = old if isinstance(old, Mapping) else reset(cur.config)
        new = apply(old, result, probe, cur.started_at, start_ns)
        # One statement on the one key: config written meanwhile by others stays.
        conn.execute(
            "UPDATE containers SET config = json_set(config, '$.Health', json(?)) WHERE id = ?",
            (json.dumps(new), row.id),
        )
    if new["Status"] != old.get("Status"):
        events.container(eng, cur, f"health_status: {new['Status']}")


def main(argv: list[str]) -> None:
    """The probe process: `root=... runroot=... id=...` (the monitor starts it)."""
    from pathlib import Path

    from portique.engine.engine import Engine

    args = dict(a.partition("=")[::2] for a in argv)
    with Engine(Path(args["root"]), Path(args["runroot"])) as eng:
        try:
            run_probe(eng, args["id"])
        except Exception:
            import traceback

            traceback.print_exc()
    os._exit(0)
