"""`update`'s checks and merge, in Docker's words (engine/update.py)."""

from __future__ import annotations

import pytest

from portique.engine.update import _merged, _resources, _verify
from portique.errors import InvalidArgument


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
        (
            {"Memory": 100 << 20, "MemorySwap": 50 << 20},
            "Minimum memoryswap limit should be larger",
        ),
        ({"Memory": 10 << 20, "MemoryReservation": 20 << 20}, "memory reservation limit"),
        ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
        ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
        ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
        ({"NanoCpus": 1_000_000_000, "CpuQuota": 50_000}, "Nano CPUs and CPU Quota"),
        ({"RestartPolicy": {"Name": "bogus"}}, "invalid restart policy 'bogus'"),
        ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}, "maximum retry count"),
        ({"KernelMemory": 10 << 20}, "kernel memory limits are not supported"),
    ],
)
def test_verify_refuses(update: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _verify(update)


def test_merge_conflicts_with_what_the_container_has() -> None:
    with pytest.raises(InvalidArgument, match="CPU Quota cannot be updated as NanoCPUs"):
        _merged("c", {"NanoCpus": 500_000_000}, {"CpuQuota": 5000})
    with pytest.raises(InvalidArgument, match="already set memoryswap limit"):
        _merged("c", {"Memory": 100 << 20, "MemorySwap": 200 << 20}, {"Memory": 300 << 20})
    with pytest.raises(InvalidArgument, match="AutoRemove is enabled"):
        _merged("c", {"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}})


def test_zero_leaves_a_field_as_it_is() -> None:
    host = {"Memory": 100 << 20, "CpuShares": 512, "PidsLimit": 10}
    update = {"Memory": 0, "CpuShares": 0, "CpusetCpus": "", "PidsLimit": None, "NanoCpus": 2 << 28}
    merged = _merged("c", host, update)
    assert merged["Memory"] == 100 << 20
    assert merged["CpuShares"] == 512
    assert merged["PidsLimit"] == 10
    assert _resources(update, merged) == {"cpu": {"period": 100_000, "quota": 53_687}}


def test_resources_of_memory_and_pids() -> None:
    host = {"Memory": 64 << 20, "MemorySwap": 0, "PidsLimit": -1}
    got = _resources({"Memory": 64 << 20, "PidsLimit": -1}, host)
    assert got == {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "pids": {"limit": -1}}
