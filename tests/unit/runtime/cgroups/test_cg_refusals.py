"""Values a cgroup driver cannot honour are refused, naming the field; none is
type-checked and silently dropped (the spec: unsupported values MUST error).

Each case runs through both drivers' pure `plan`, with `has` saying which
interface files the host offers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from portique.errors import Unsupported
from portique.oci.resources import parse_resources
from portique.runtime.cgroups import v1, v2

ALL_V1: Callable[[str, str], bool] = lambda c, f: True  # noqa: E731
ALL_V2: Callable[[str], bool] = lambda f: True  # noqa: E731


def _v1_without(*files: str) -> Callable[[str, str], bool]:
    return lambda c, f: f not in files


def _v1(obj: dict[str, Any], has: Callable[[str, str], bool] = ALL_V1) -> list[tuple[str, ...]]:
    return [tuple(w) for w in v1.plan(parse_resources(obj), has)]


def _v2(obj: dict[str, Any], has: Callable[[str], bool] = ALL_V2) -> list[tuple[str, ...]]:
    return [tuple(w) for w in v2.plan(parse_resources(obj), has)]


def test_kernel_memory_limit_is_refused_on_both() -> None:
    # Linux >= 5.16 accepts memory.kmem.limit_in_bytes and ignores it.
    for plan in (_v1, _v2):
        with pytest.raises(Unsupported, match=r"linux\.resources\.memory\.kernel: "):
            plan({"memory": {"kernel": 64 << 20}})
    # -1 (no limit) is what the kernel does: honoured by doing nothing.
    assert _v1({"memory": {"kernel": -1}}) == []
    assert _v2({"memory": {"kernel": -1}}) == []


def test_kernel_tcp_is_kmem_tcp_on_v1_and_refused_on_v2() -> None:
    assert _v1({"memory": {"kernelTCP": 8 << 20}}) == [
        ("memory", "memory.kmem.tcp.limit_in_bytes", str(8 << 20))
    ]
    with pytest.raises(Unsupported, match=r"kernelTCP: this kernel has no memory\.kmem\.tcp"):
        _v1({"memory": {"kernelTCP": 8 << 20}}, _v1_without("memory.kmem.tcp.limit_in_bytes"))
    with pytest.raises(Unsupported, match=r"memory\.kernelTCP: cgroup v2 has no kernel TCP"):
        _v2({"memory": {"kernelTCP": 8 << 20}})
    assert _v2({"memory": {"kernelTCP": -1}}) == []


def test_network_is_net_cls_and_net_prio_on_v1() -> None:
    obj = {
        "network": {
            "classID": 0x100001,
            "priorities": [{"name": "eth0", "priority": 5}, {"name": "lo", "priority": 2}],
        }
    }
    assert _v1(obj) == [
        ("net_cls", "net_cls.classid", str(0x100001)),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("net_prio", "net_prio.ifpriomap", "lo 2"),
    ]
    with pytest.raises(Unsupported, match=r"network\.classID: needs the net_cls cgroup"):
        _v1(obj, _v1_without("net_cls.classid"))
    with pytest.raises(Unsupported, match=r"network\.priorities: needs the net_prio cgroup"):
        _v1(obj, _v1_without("net_prio.ifpriomap"))
    with pytest.raises(Unsupported, match=r"network: net_cls and net_prio exist on cgroup v1"):
        _v2(obj)
    assert _v2({"network": {}}) == []


def test_rdma_is_rdma_max() -> None:
    obj = {"rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}, "mlx5_1": {"hcaHandles": 3}}}
    lines = ["mlx4_0 hca_handle=2 hca_object=2000", "mlx5_1 hca_handle=3"]
    assert _v1(obj) == [("rdma", "rdma.max", line) for line in lines]
    assert _v2(obj) == [("rdma.max", line) for line in lines]
    with pytest.raises(Unsupported, match=r"linux\.resources\.rdma: needs the rdma cgroup"):
        _v1(obj, _v1_without("rdma.max"))


def test_v1_only_memory_knobs() -> None:
    assert _v1({"memory": {"swappiness": 10, "disableOOMKiller": False}}) == [
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "0"),
    ]
    with pytest.raises(Unsupported, match=r"memory\.swappiness: cgroup v2 has no"):
        _v2({"memory": {"swappiness": 10}})
    with pytest.raises(Unsupported, match=r"memory\.disableOOMKiller: cgroup v2 cannot"):
        _v2({"memory": {"disableOOMKiller": True}})
    assert _v2({"memory": {"disableOOMKiller": False}}) == []


def test_use_hierarchy_false_is_refused() -> None:
    for plan in (_v1, _v2):
        assert plan({"memory": {"useHierarchy": True}}) == []
        with pytest.raises(Unsupported, match=r"memory\.useHierarchy: false"):
            plan({"memory": {"useHierarchy": False}})


def test_leaf_weights() -> None:
    obj = {
        "blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}]}
    }
    assert _v1(obj) == [
        ("blkio", "blkio.weight_device", "8:0 500"),
        ("blkio", "blkio.leaf_weight_device", "8:0 300"),
    ]
    with pytest.raises(Unsupported, match=r"weightDevice\[0\]\.leafWeight"):
        _v1(obj, _v1_without("blkio.leaf_weight", "blkio.weight"))
    with pytest.raises(Unsupported, match=r"blockIO\.leafWeight: cgroup v2 has no leaf"):
        _v2(obj)
