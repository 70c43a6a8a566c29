"""config.json fields the runtime now honours or refuses: a uts namespace
joined by path, time offsets, personality, id-mapped mounts, and the spec's
properties this runtime does not implement (refused, never ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from portique.errors import InvalidArgument, Unsupported
from portique.oci.runtime import IDMapping, Personality, TimeOffset, parse_spec


def _spec(**linux: Any) -> dict[str, Any]:
    return {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["true"]},
        "linux": {"namespaces": [{"type": "mount"}], **linux},
    }


def test_hostname_needs_a_uts_namespace_of_some_kind() -> None:
    obj = _spec()
    obj["hostname"] = "h"
    with pytest.raises(InvalidArgument, match="hostname: cannot set a hostname"):
        parse_spec(obj)
    # Joined by path (a pod's) is the container's own too.
    obj["linux"]["namespaces"].append({"type": "uts", "path": "/proc/42/ns/uts"})
    assert parse_spec(obj).hostname == "h"


def test_time_offsets() -> None:
    obj = _spec(timeOffsets={"monotonic": {"secs": 5, "nanosecs": 7}, "boottime": {"secs": -3}})
    with pytest.raises(InvalidArgument, match=r"linux\.timeOffsets: needs a new time namespace"):
        parse_spec(obj)
    obj["linux"]["namespaces"].append({"type": "time"})
    assert parse_spec(obj).linux.time_offsets == (
        TimeOffset("boottime", -3, 0),
        TimeOffset("monotonic", 5, 7),
    )
    obj["linux"]["timeOffsets"] = {"realtime": {"secs": 1}}
    with pytest.raises(InvalidArgument, match="monotonic and boottime only"):
        parse_spec(obj)
    obj["linux"]["timeOffsets"] = {"monotonic": {"nanosecs": 10**9}}
    with pytest.raises(InvalidArgument, match="nanosecs: 1000000000 is out of range"):
        parse_spec(obj)


def test_personality() -> None:
    assert parse_spec(_spec(personality={"domain": "LINUX32"})).linux.personality == Personality(
        "LINUX32"
    )
    assert Personality("LINUX32").value == 8
    with pytest.raises(InvalidArgument, match="is not LINUX or LINUX32"):
        parse_spec(_spec(personality={"domain": "SVR4"}))
    with pytest.raises(InvalidArgument, match="flags: 'ADDR_NO_RANDOMIZE' is not supported"):
        parse_spec(_spec(personality={"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}))


def test_idmapped_mounts() -> None:
    maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
    obj = _spec()
    obj["mounts"] = [
        {
            "destination": "/a",
            "source": "/x",
            "options": ["rbind", "ridmap"],
            "uidMappings": maps,
            "gidMappings": maps,
        },
        {
            "destination": "/b",
            "source": "/x",
            "options": ["bind"],
            "uidMappings": maps,
            "gidMappings": maps,
        },
        {"destination": "/c", "source": "/x", "options": ["bind"]},
    ]
    a, b, c = parse_spec(obj).mounts
    assert (a.idmap, a.uid_mappings) == ("ridmap", (IDMapping(0, 1000, 10),))
    assert b.idmap == "idmap"  # mappings alone still mean an id-mapped mount
    assert c.idmap == ""
    obj["mounts"] = [{"destination": "/c", "source": "/x", "options": ["bind", "idmap"]}]
    with pytest.raises(InvalidArgument, match="needs a new user namespace"):
        parse_spec(obj)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("linux", "intelRdt", {"closID": "x"}),
        ("linux", "memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0"}),
        ("linux", "netDevices", {"eth1": {}}),
        ("process", "scheduler", {"policy": "SCHED_FIFO"}),
        ("process", "ioPriority", {"class": "IOPRIO_CLASS_IDLE"}),
        ("process", "execCPUAffinity", {"initial": "0"}),
    ],
)
def test_spec_properties_not_implemented_are_refused(where: str, key: str, value: object) -> None:
    obj = _spec()
    obj[where][key] = value
    with pytest.raises(Unsupported, match=rf"{where}\.{key}: not supported by portique-runtime"):
        parse_spec(obj)
    # Properties the spec does not define are still ignored, as it requires.
    obj = _spec()
    obj[where]["someFutureThing"] = value
    assert parse_spec(obj).process is not None
