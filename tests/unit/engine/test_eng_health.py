"""Healthcheck rules (engine/health.py): the flags as docker CLI reads them,
dockerd's checks and merge with the image, the probe's command, and the
status after each result as dockerd's handleProbeResult decides."""

from __future__ import annotations

from typing import Any

import pytest

from portique.engine import health
from portique.errors import InvalidArgument


def test_from_flags() -> None:
    assert health.from_flags() is None
    assert health.from_flags(none=True) == {"Test": ["NONE"]}
    # Zero fields left out, as Docker's JSON (omitempty).
    assert health.from_flags(cmd="curl -f x", interval="1m30s", retries=4) == {
        "Test": ["CMD-SHELL", "curl -f x"],
        "Interval": 90_000_000_000,
        "Retries": 4,
    }
    # Only a duration: the image's test stays (merged from it).
    assert health.from_flags(timeout="2s") == {"Timeout": 2_000_000_000}
    with pytest.raises(InvalidArgument, match="--no-healthcheck conflicts"):
        health.from_flags(none=True, retries=1)
    with pytest.raises(InvalidArgument, match="--health-start-period cannot be negative"):
        health.from_flags(start_period="-1s")
    with pytest.raises(InvalidArgument, match="--health-retries cannot be negative"):
        health.from_flags(retries=-2)


def test_check() -> None:
    health.check(None)
    health.check({"Test": ["CMD", "true"], "Interval": 1_000_000, "Retries": 0})
    with pytest.raises(InvalidArgument, match=r"^Interval in Healthcheck cannot be less than 1ms$"):
        health.check({"Interval": 999_999})
    with pytest.raises(InvalidArgument, match="Retries in Healthcheck cannot be negative"):
        health.check({"Retries": -1})
    with pytest.raises(InvalidArgument, match="Test in Healthcheck"):
        health.check({"Test": "true"})


def test_merge_with_the_image() -> None:
    image = {"Test": ["CMD", "true"], "Interval": 5, "Timeout": 6, "Retries": 2}
    assert health.merge(None, image) == image
    assert health.merge(None, None) is None
    got = health.merge({"Test": ["CMD-SHELL", "false"], "Interval": 0, "Retries": 9}, image)
    assert got == {"Test": ["CMD-SHELL", "false"], "Interval": 5, "Timeout": 6, "Retries": 9}
    assert health.merge({"Test": None, "Timeout": 1}, image)["Test"] == ["CMD", "true"]  # type: ignore[index]
    assert health.merge({"Test": ["NONE"]}, image)["Test"] == ["NONE"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("config", "argv"),
    [
        ({"Healthcheck": {"Test": ["CMD", "a", "b c"]}}, ["a", "b c"]),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "a && b"]}}, ["/bin/sh", "-c", "a && b"]),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "x"]}, "Shell": ["/bin/ash", "-e", "-c"]}, ["/bin/ash", "-e", "-c", "x"]),
        ({"Healthcheck": {"Test": ["NONE"]}}, None),
        ({"Healthcheck": {"Test": []}}, None),
        ({"Healthcheck": {"Test": ["BOGUS", "x"]}}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_probe_of(config: dict[str, Any], argv: list[str] | None) -> None:
    p = health.probe_of(config)
    assert (p.argv if p else None) == argv


def test_probe_defaults_and_monitor_arg() -> None:
    config = {"Healthcheck": {"Test": ["CMD", "true"]}}
    p = health.probe_of(config)
    assert p is not None
    assert (p.interval, p.timeout, p.retries, p.start_period, p.start_interval) == (
        30_000_000_000, 30_000_000_000, 3, 0, 5_000_000_000,
    )  # fmt: skip
    assert health.monitor_arg(config) == "30000000000:30000000000:0:5000000000"
    assert health.monitor_arg({"Healthcheck": {"Test": ["NONE"]}}) == ""


def _result(code: int, start: int = 0) -> dict[str, Any]:
    return {"Start": "s", "End": "e", "ExitCode": code, "Output": ""}


def test_apply_follows_dockerd() -> None:
    p = health.Probe(["true"], {"Retries": 2, "StartPeriod": 10_000_000_000})
    h: dict[str, Any] = {"Status": "starting", "FailingStreak": 0, "Log": []}
    started = 1000.0
    # Failures within the start period while starting: no streak.
    h = health.apply(h, _result(1), p, started, int((started + 5) * 1e9))
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    # After it: the streak grows, unhealthy at Retries.
    h = health.apply(h, _result(1), p, started, int((started + 11) * 1e9))
    assert (h["Status"], h["FailingStreak"]) == ("starting", 1)
    h = health.apply(h, _result(-1), p, started, int((started + 12) * 1e9))
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 2)
    h = health.apply(h, _result(0), p, started, int((started + 13) * 1e9))
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)
    # Healthy, then failing within the start period: counts (no longer starting).
    h = health.apply(h, _result(1), p, started + 12, int((started + 14) * 1e9))
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 1)
    for _ in range(10):
        h = health.apply(h, _result(1), p, started, int((started + 20) * 1e9))
    assert len(h["Log"]) == health.MAX_LOG


def test_reset_keeps_the_log() -> None:
    cfg = {"Health": {"Status": "unhealthy", "FailingStreak": 7, "Log": [1, 2, 3, 4, 5, 6]}}
    assert health.reset(cfg) == {"Status": "starting", "FailingStreak": 0, "Log": [2, 3, 4, 5, 6]}
    assert health.reset({}) == {"Status": "starting", "FailingStreak": 0, "Log": []}


def test_rfc3339_as_go() -> None:
    assert health._rfc3339(1_765_000_000_123_456_700) == "2025-12-06T05:46:40.1234567Z"
    assert health._rfc3339(1_765_000_000_000_000_000) == "2025-12-06T05:46:40Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (30_000_000_000, "30s"),
        (90_000_000_000, "1m30s"),
        (500_000_000, "500ms"),
        (1_500_000_000, "1.5s"),
        (3_600_000_000_000, "1h0m0s"),
        (1_000, "1µs"),
        (0, "0s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert health.go_duration(ns) == text


def _row(config: dict[str, Any]) -> Any:
    from portique.engine.db import ContainerRow

    return ContainerRow(
        id="c" * 64, name="x", image="b", image_id="sha256:" + "0" * 64, created=1.0,
        config={"HostConfig": {}, **config},
    )  # fmt: skip


def test_state_as_dockerd_shows_it() -> None:
    probe = {"Healthcheck": {"Test": ["CMD", "true"]}}
    # Never started: no Health (dockerd makes it at the first start): "none".
    assert health.state_of(_row({"Config": probe})) is None
    assert health.status_of(_row({"Config": probe})) == ""
    started = _row({"Config": probe, "Health": health.reset({})})
    assert health.state_of(started) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert health.status_of(started) == "starting"
    # No probe (none, or --no-healthcheck): no Health whatever is stored.
    none = _row({"Config": {"Healthcheck": {"Test": ["NONE"]}}, "Health": {"Status": "healthy"}})
    assert health.state_of(none) is None
