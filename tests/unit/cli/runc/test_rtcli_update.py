"""`update`: sizes and the resources object built from runc's flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from portique.cli.runc.commands import update
from portique.errors import InvalidArgument
from portique.oci.resources import parse_resources


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    update.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1024", 1024),
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("2KiB", 2048),
        ("1.5k", 1536),
        ("-1", -1),
    ],
)
def test_parse_size(text: str, want: int) -> None:
    assert update.parse_size(text) == want


@pytest.mark.parametrize("text", ["", "m", "12q", "-2", "1e3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        update.parse_size(text)


def test_flags_build_a_valid_resources_object() -> None:
    obj = update.resources_object(
        parse(
            [
                "--memory",
                "64m",
                "--memory-swap",
                "-1",
                "--cpu-share",
                "512",
                "--cpu-quota",
                "50000",
                "--cpu-period",
                "100000",
                "--cpuset-cpus",
                "0",
                "--pids-limit",
                "42",
                "c1",
            ]
        )
    )
    assert obj == {
        "memory": {"limit": 64 << 20, "swap": -1},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 42},
    }
    res = parse_resources(obj)
    assert res.memory is not None
    assert res.memory.limit == 64 << 20
    assert res.pids is not None
    assert res.pids.limit == 42


def test_file_then_flags_win_and_devices_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "devices": [{"allow": True, "access": "rwm"}],
                "memory": {"limit": 1000000},
                "pids": {"limit": 10},
            }
        )
    )
    obj = update.resources_object(parse(["-r", str(path), "--pids-limit", "20", "c1"]))
    assert obj == {"memory": {"limit": 1000000}, "pids": {"limit": 20}}


def test_nothing_to_update_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="nothing to update"):
        update.resources_object(parse(["c1"]))
    with pytest.raises(InvalidArgument, match="not a number"):
        update.resources_object(parse(["--pids-limit", "many", "c1"]))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        update.resources_object(parse(["-r", str(bad), "c1"]))
    with pytest.raises(InvalidArgument, match="does not exist"):
        update.resources_object(parse(["-r", str(tmp_path / "none"), "c1"]))


def test_zeros_in_the_file_leave_values_unchanged(tmp_path: Path) -> None:
    # What dockerd 20.10 sends for `docker update --memory 100m --memory-swap 200m`:
    # every field it knows, zeros included; a zero kernel limit used to be refused.
    path = tmp_path / "r.json"
    path.write_text(
        '{"memory":{"limit":104857600,"reservation":0,"swap":209715200,"kernel":0},'
        '"cpu":{"shares":0,"quota":0,"period":0,"cpus":""},"blockIO":{"weight":0},'
        '"pids":{"limit":0}}'
    )
    obj = update.resources_object(parse(["-r", str(path), "c1"]))
    assert obj == {"memory": {"limit": 104857600, "swap": 209715200}}
    res = parse_resources(obj)
    assert res.memory is not None
    assert res.memory.kernel is None
    assert res.memory.reservation is None


def test_zero_is_kept_where_it_means_something(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"memory":{"swappiness":0,"disableOOMKiller":false},"cpu":{"idle":0}}')
    obj = update.resources_object(parse(["-r", str(path), "c1"]))
    assert obj == {"memory": {"swappiness": 0, "disableOOMKiller": False}, "cpu": {"idle": 0}}
