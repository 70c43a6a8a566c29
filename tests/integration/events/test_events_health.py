"""Healthchecks (issue 13, item 2): the image's HEALTHCHECK and the --health-*
flags, run by each container's monitor, seen as Docker shows them: `ps`
STATUS and `--filter health=`, `inspect` .State.Health and
.Config.Healthcheck, and health_status events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from support.engine_cli import Portique
from support.events_cli import DEADLINE, now, recorded


def _health(pq: Portique, ref: str) -> dict[str, Any]:
    out = pq.inspect(ref, "{{json .State.Health}}")
    got: dict[str, Any] = json.loads(out)
    return got


def _wait_status(pq: Portique, ref: str, status: str) -> dict[str, Any]:
    end = time.monotonic() + DEADLINE
    while True:
        h = _health(pq, ref)
        if h["Status"] == status:
            return h
        assert time.monotonic() < end, h
        time.sleep(0.1)


def test_health_cmd_goes_unhealthy_then_healthy(pq: Portique) -> None:
    since = now()
    cid = pq.ok(
        "run", "-d", "--name", "hc-flip", "--health-cmd", "cat /ok", "--health-interval", "200ms",
        "--health-retries", "2", "busybox", "sleep", "1000",
    ).strip()  # fmt: skip
    try:
        h = _wait_status(pq, cid, "unhealthy")
        assert h["FailingStreak"] >= 2
        first = h["Log"][0]
        assert sorted(first) == ["End", "ExitCode", "Output", "Start"]
        assert first["ExitCode"] == 1
        assert "No such file or directory" in first["Output"]
        assert first["Start"] <= first["End"]
        assert pq.ok("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}") == "hc-flip\n"
        assert pq.ok("ps", "--filter", "name=hc-flip", "--format", "{{.Status}}").endswith(
            " (unhealthy)\n"
        )
        pq.ok("exec", cid, "sh", "-c", "echo fine > /ok")
        h = _wait_status(pq, cid, "healthy")
        assert h["FailingStreak"] == 0
        assert h["Log"][-1]["ExitCode"] == 0
        assert h["Log"][-1]["Output"] == "fine\n"
        assert len(h["Log"]) <= 5
        assert pq.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}") == "hc-flip\n"
        assert pq.ok("ps", "--filter", "name=hc-flip", "--format", "{{.Status}}").endswith(
            " (healthy)\n"
        )
        hc = json.loads(pq.inspect(cid, "{{json .Config.Healthcheck}}"))
        assert hc["Test"] == ["CMD-SHELL", "cat /ok"]
        assert hc["Interval"] == 200_000_000
        assert hc["Retries"] == 2
        lines = recorded(pq, since, "--filter", "event=health_status", want="healthy")
        assert [ln.split(" ", 3)[2:3] for ln in lines][:1] == [["health_status:"]]
        statuses = [ln.split(" ")[3] for ln in lines]
        assert statuses[:2] == ["unhealthy", "healthy"]
        # Docker's probes show as exec events too.
        assert recorded(pq, since, "--filter", "container=hc-flip", "--filter", "event=exec_die")
    finally:
        pq.ok("rm", "-f", cid)


def test_image_healthcheck_and_overrides(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD ["true"]\n'
    )
    pq.ok("build", "-q", "-t", "hc-image", str(tmp_path), timeout=300)
    a = pq.ok("run", "-d", "hc-image", "sleep", "1000").strip()
    b = pq.ok("run", "-d", "--health-cmd", "false", "hc-image", "sleep", "1000").strip()
    c = pq.ok("run", "-d", "--no-healthcheck", "hc-image", "sleep", "1000").strip()
    try:
        assert _wait_status(pq, a, "healthy")["Log"][-1]["ExitCode"] == 0
        assert json.loads(pq.inspect(a, "{{json .Config.Healthcheck}}"))["Test"] == ["CMD", "true"]
        # The flag replaces the test; the image's interval and retries stay.
        h = _wait_status(pq, b, "unhealthy")
        assert h["Log"][-1]["ExitCode"] == 1
        hc = json.loads(pq.inspect(b, "{{json .Config.Healthcheck}}"))
        assert (hc["Test"], hc["Interval"], hc["Retries"]) == (
            ["CMD-SHELL", "false"],
            200_000_000,
            1,
        )
        # --no-healthcheck: no probe, no Health, a plain status.
        assert pq.inspect(c, "{{json .Config.Healthcheck.Test}}") == '["NONE"]'
        assert pq.inspect(c, "{{json .State}}").count('"Health"') == 0
        assert pq.ok("ps", "--filter", "health=none", "-q", "--no-trunc").split() == [c]
    finally:
        pq.ok("rm", "-f", a, b, c)


def test_a_hanging_probe_is_killed_at_its_timeout(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "--health-cmd", "sleep 60", "--health-timeout", "300ms",
        "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "1000",
    ).strip()  # fmt: skip
    try:
        h = _wait_status(pq, cid, "unhealthy")
        assert h["Log"][0]["ExitCode"] == -1
        assert h["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
        # The container's exit is not held up by a probe under way.
        pq.ok("stop", "-t", "0", cid, timeout=DEADLINE)
        assert pq.inspect(cid, "{{.State.Status}}") == "exited"
    finally:
        pq.ok("rm", "-f", cid)


def test_start_period_keeps_it_starting(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "--health-cmd", "false", "--health-start-period", "1h",
        "--health-start-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "1000",
    ).strip()  # fmt: skip
    try:
        end = time.monotonic() + DEADLINE
        while len(_health(pq, cid)["Log"]) < 3:
            assert time.monotonic() < end
            time.sleep(0.1)
        h = _health(pq, cid)
        assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
        assert pq.ok("ps", "-q", "--no-trunc", "--filter", "health=starting").split() == [cid]
        status = pq.ok("ps", "--filter", f"id={cid}", "--format", "{{.Status}}")
        assert status.endswith(" (health: starting)\n")
    finally:
        pq.ok("rm", "-f", cid)


def test_bad_health_flags_in_dockers_words(pq: Portique) -> None:
    cases = [
        (["--no-healthcheck", "--health-cmd", "true"],
         "portique: --no-healthcheck conflicts with --health-* options\n"),
        (["--health-interval=-1s"], "portique: --health-interval cannot be negative\n"),
        (["--health-retries=-1"], "portique: --health-retries cannot be negative\n"),
        (["--health-timeout", "10us", "--health-cmd", "true"],
         "portique: Timeout in Healthcheck cannot be less than 1ms\n"),
    ]  # fmt: skip
    for flags, message in cases:
        r = pq("create", *flags, "busybox")
        assert (r.returncode, r.stderr) == (125, message), flags
    r = pq("ps", "--filter", "health=sick")
    assert (r.returncode, r.stderr) == (
        125,
        "portique: Unrecognised filter value for health: sick\n",
    )
