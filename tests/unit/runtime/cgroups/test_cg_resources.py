"""parse_resources: typed values out, hostile JSON rejected naming the field."""

from __future__ import annotations

import pytest

from portique.errors import InvalidArgument
from portique.oci.resources import (
    BlockIO,
    Cpu,
    DeviceRule,
    HugepageLimit,
    LinuxResources,
    Memory,
    Network,
    Pids,
    ThrottleDevice,
    WeightDevice,
    parse_resources,
)


def test_full_resources() -> None:
    res = parse_resources(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},
            ],
            "memory": {
                "limit": 100,
                "reservation": 50,
                "swap": 200,
                "kernel": -1,
                "swappiness": 0,
                "disableOOMKiller": False,
            },
            "cpu": {
                "shares": 1024,
                "quota": 20000,
                "period": 100000,
                "realtimeRuntime": 0,
                "cpus": "0-1,3",
                "mems": "0",
                "idle": 1,
            },
            "pids": {"limit": 64},
            "blockIO": {
                "weight": 10,
                "leafWeight": 10,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 9437184}],
            "network": {"classID": 1048577},
            "unified": {
                "memory.high": "max",
                "io.latency": "8:0 target=10",
                "hugetlb.2MB.max": "0",
            },
            "somethingNew": {"x": 1},  # unknown keys are ignored, as the spec says
        },
        "linux.resources",
    )
    assert res == LinuxResources(
        devices=(
            DeviceRule(allow=False),
            DeviceRule(allow=True, type="c", major=1, minor=5, access="rw"),
        ),
        memory=Memory(
            limit=100, reservation=50, swap=200, kernel=-1, swappiness=0, disable_oom_killer=False
        ),
        cpu=Cpu(
            shares=1024,
            quota=20000,
            period=100000,
            realtime_runtime=0,
            cpus="0-1,3",
            mems="0",
            idle=1,
        ),
        pids=Pids(64),
        block_io=BlockIO(
            weight=10,
            leaf_weight=10,
            weight_device=(WeightDevice(8, 0, 500, 300),),
            throttle_read_bps_device=(ThrottleDevice(8, 0, 600),),
        ),
        hugepage_limits=(HugepageLimit("2MB", 9437184),),
        network=Network(class_id=1048577),
        unified=(
            ("memory.high", "max"),
            ("io.latency", "8:0 target=10"),
            ("hugetlb.2MB.max", "0"),
        ),
    )
    assert res.devices[0].v1_line() == "a *:* rwm"
    assert res.devices[1].v1_line() == "c 1:5 rw"


def test_empty_and_none() -> None:
    assert parse_resources(None, "linux.resources") == LinuxResources()
    assert parse_resources({}, "linux.resources") == LinuxResources()
    # 0 limits mean "not set" (as runc), not "zero bytes".
    res = parse_resources(
        {"memory": {"limit": 0}, "pids": {"limit": 0}, "cpu": {"quota": 0, "shares": 0}}, "r"
    )
    assert res.memory == Memory()
    assert res.cpu == Cpu()
    assert res.pids == Pids(0)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "linux.resources: must be an object"),
        ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit: must be an integer"),
        ({"memory": {"limit": True}}, "linux.resources.memory.limit: must be an integer"),
        ({"memory": {"limit": 1.5}}, "linux.resources.memory.limit: must be an integer"),
        ({"memory": {"limit": -2}}, "linux.resources.memory.limit: -2 is out of range"),
        ({"memory": {"limit": 2**63}}, "linux.resources.memory.limit: .* is out of range"),
        ({"memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap: must be at least"),
        ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: 101 is out of range"),
        ({"memory": {"disableOOMKiller": 1}}, "memory.disableOOMKiller: must be a boolean"),
        ({"memory": []}, "linux.resources.memory: must be an object"),
        ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: must be between 2 and 262144"),
        ({"cpu": {"period": 10}}, "linux.resources.cpu.period: must be between 1000"),
        ({"cpu": {"quota": 10}}, "linux.resources.cpu.quota: must be -1 or at least 1000"),
        ({"cpu": {"cpus": "0-1;rm -rf"}}, r"linux.resources.cpu.cpus: not a cpu list"),
        ({"cpu": {"mems": 0}}, "linux.resources.cpu.mems: must be a string"),
        ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle: 2 is out of range"),
        ({"pids": {"limit": "10"}}, "linux.resources.pids.limit: must be an integer"),
        ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight: must be between 10"),
        ({"blockIO": {"weight": 2000}}, "linux.resources.blockIO.weight: 2000 is out of range"),
        (
            {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
            r"linux.resources.blockIO.throttleReadBpsDevice\[0\].minor: required",
        ),
        (
            {"blockIO": {"weightDevice": {"major": 8}}},
            "linux.resources.blockIO.weightDevice: must be an array",
        ),
        ({"devices": [{"type": "c"}]}, r"linux.resources.devices\[0\].allow: required"),
        (
            {"devices": [{"allow": True, "type": "x"}]},
            r"linux.resources.devices\[0\].type: must be one of a, b, c",
        ),
        (
            {"devices": [{"allow": True, "access": "rwx"}]},
            r"linux.resources.devices\[0\].access: must be letters from rwm",
        ),
        (
            {"hugepageLimits": [{"pageSize": "2MB/../x", "limit": 1}]},
            r"linux.resources.hugepageLimits\[0\].pageSize: not a page size",
        ),
        (
            {"unified": {"../../release_agent": "x"}},
            r"linux.resources.unified.../../release_agent: not a cgroup interface file name",
        ),
        ({"unified": {"cgroup.procs": "1"}}, "linux.resources.unified.cgroup.procs: reserved"),
        ({"unified": {"memory.high": 5}}, "linux.resources.unified.memory.high: must be a string"),
        ({"devices": [{}] * 5000}, "linux.resources.devices: more than 4096 entries"),
    ],
)
def test_rejections_name_the_field(obj: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_resources(obj, "linux.resources")
