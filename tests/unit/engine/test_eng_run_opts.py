"""The further run/create flags' values (engine/run_opts.py, mount_opts.py) and the
json-file log rotation: pure parsing, no root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portique.engine import mount_opts, run_opts
from portique.engine.logfile import LogWriter
from portique.errors import InvalidArgument


def test_device_specs() -> None:
    assert run_opts.parse_device("/dev/sda") == {
        "PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm",
    }  # fmt: skip
    assert run_opts.parse_device("/dev/sda:/dev/xvdc:r")["PathInContainer"] == "/dev/xvdc"
    assert run_opts.parse_device("/dev/sda:/dev/xvdc:r")["CgroupPermissions"] == "r"
    assert run_opts.parse_device("/dev/sda:rw")["CgroupPermissions"] == "rw"
    for bad in ("", "dev/sda", "/dev/sda:/x:/y", "/dev/sda:rel"):
        with pytest.raises(InvalidArgument):
            run_opts.parse_device(bad)


def test_throttles_and_expose() -> None:
    bps = run_opts.parse_throttle("/dev/sda:1mb", "--device-read-bps", bytes_rate=True)
    assert bps == {"Path": "/dev/sda", "Rate": 1 << 20}
    iops = run_opts.parse_throttle("/dev/sda:300", "--device-read-iops", bytes_rate=False)
    assert iops["Rate"] == 300
    for bad, in_bytes in (("/dev/sda", True), ("/dev/sda:1mb", False), ("sda:1", False)):
        with pytest.raises(InvalidArgument):
            run_opts.parse_throttle(bad, "--x", bytes_rate=in_bytes)
    assert run_opts.expose_ports("80") == ["80/tcp"]
    assert run_opts.expose_ports("53/UDP") == ["53/udp"]
    assert run_opts.expose_ports("7000-7002") == ["7000/tcp", "7001/tcp", "7002/tcp"]
    for bad in ("0", "x", "90-80", "80/icmp", "70000"):
        with pytest.raises(InvalidArgument):
            run_opts.expose_ports(bad)


def test_sysctls_namespace_modes_cgroup_parent_mac() -> None:
    assert run_opts.parse_sysctls(["net.ipv4.ip_forward=1"]) == {"net.ipv4.ip_forward": "1"}
    run_opts.check_sysctls({"kernel.shmmax": "1", "net.core.somaxconn": "5"}, {})
    with pytest.raises(InvalidArgument, match="not whitelisted"):
        run_opts.check_sysctls({"vm.swappiness": "1"}, {})
    with pytest.raises(InvalidArgument, match="host network"):
        run_opts.check_sysctls({"net.x": "1"}, {"NetworkMode": "host"})
    with pytest.raises(InvalidArgument):
        run_opts.parse_sysctls(["novalue"])
    assert run_opts.parse_ns_mode("container:web", "--pid", ("host",), True) == "container:web"
    with pytest.raises(InvalidArgument):
        run_opts.parse_ns_mode("container:web", "--uts", ("host",), False)
    assert run_opts.parse_cgroup_parent("/team/a") == "team/a"
    assert run_opts.parse_cgroup_parent("portique/team") == "team"
    assert run_opts.cgroups_path({"CgroupParent": "team"}, "abc") == "/portique/team/abc"
    assert run_opts.cgroups_path({}, "abc") == "/portique/abc"
    for bad in ("../x", "a/../b", "a//b"):
        with pytest.raises(InvalidArgument):
            run_opts.parse_cgroup_parent(bad)
    assert run_opts.parse_mac("02:42:AC:11:00:02") == "02:42:ac:11:00:02"
    for bad in ("02:42:ac:11:00", "01:00:00:00:00:00", "zz:42:ac:11:00:02"):
        with pytest.raises(InvalidArgument):
            run_opts.parse_mac(bad)


def test_log_config() -> None:
    conf = run_opts.parse_log_config("", ["max-size=10m", "max-file=3"])
    assert conf == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    rot = run_opts.rotation_of(conf)
    assert (rot.max_size, rot.max_file) == (10 << 20, 3)
    assert run_opts.rotation_of({"Type": "local", "Config": {}}).max_file == 5
    assert run_opts.rotation_of(None).max_size == 0
    for driver, opts in (("syslog", []), ("", ["max-file=2"]), ("", ["bogus=1"]),
                         ("none", ["max-size=1m"]), ("", ["max-file=0", "max-size=1m"])):  # fmt: skip
        with pytest.raises(InvalidArgument):
            run_opts.parse_log_config(driver, opts)


def test_relative_bind_sources() -> None:
    assert mount_opts.resolve_volume_source(".:/src", "/home/u") == "/home/u:/src"
    assert mount_opts.resolve_volume_source("./d:/d:ro", "/home/u") == "/home/u/d:/d:ro"
    assert mount_opts.resolve_volume_source("data:/d", "/home/u") == "data:/d"
    assert mount_opts.resolve_volume_source("/abs:/d", "/home/u") == "/abs:/d"
    assert mount_opts.resolve_volume_source("/anon", "/home/u") == "/anon"
    spec = mount_opts.resolve_mount_source("type=bind,src=.,dst=/x", "/w")
    assert spec == "type=bind,src=/w,dst=/x"
    assert mount_opts.resolve_mount_source("type=volume,src=v,dst=/x", "/w").endswith(
        "src=v,dst=/x"
    )


def test_log_writer_rotates_per_record(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(str(path), max_size=1000, max_file=3)
    w.write("stdout", b"".join(b"line-%03d\n" % i for i in range(200)))  # one big read
    w.close()
    files = [path, Path(f"{path}.1"), Path(f"{path}.2")]
    assert all(f.stat().st_size <= 1000 for f in files)
    assert not Path(f"{path}.3").exists()
    lines = [json.loads(x)["log"] for f in reversed(files) for x in f.read_text().splitlines()]
    assert lines[-1] == "line-199\n"
    assert lines == [f"line-{i:03d}\n" for i in range(200 - len(lines), 200)]
    single = tmp_path / "one.log"
    w = LogWriter(str(single), max_size=500, max_file=1)
    w.write("stdout", b"".join(b"x%03d\n" % i for i in range(100)))
    w.close()
    assert single.stat().st_size <= 500
    assert not Path(f"{single}.1").exists()
    off = tmp_path / "none.log"
    w = LogWriter(str(off), disabled=True)
    w.write("stdout", b"secret\n")
    w.close()
    assert not off.exists()


def test_host_config_shapes_from_a_hostile_face() -> None:
    good = {
        "GroupAdd": ["10"], "PidMode": "host", "IpcMode": "shareable", "Sysctls": {"net.x": "1"},
        "Devices": [{"PathOnHost": "/dev/a", "PathInContainer": "/dev/b",
                     "CgroupPermissions": "r"}],
        "BlkioDeviceReadBps": [{"Path": "/dev/a", "Rate": 5}], "ShmSize": 1 << 20,
        "OomScoreAdj": -5, "CgroupParent": "team", "LogConfig": {"Type": "json-file",
                                                              "Config": {"max-size": "1m"}},
    }  # fmt: skip
    run_opts.check_host_config(good)
    run_opts.check_host_config({})
    for key, bad in (
        ("GroupAdd", "10"),
        ("GroupAdd", [10]),
        ("PidMode", "sideways"),
        ("PidMode", 3),
        ("Devices", [{"PathOnHost": "/dev/a"}]),
        ("Devices", ["/dev/a"]),
        ("BlkioDeviceReadBps", [{"Path": "/dev/a", "Rate": -1}]),
        ("BlkioDeviceReadBps", [{"Path": "/dev/a", "Rate": True}]),
        ("Sysctls", {"net.x": 1}),
        ("Sysctls", ["net.x=1"]),
        ("ShmSize", -1),
        ("OomScoreAdj", 5000),
        ("MemorySwappiness", 101),
        ("CgroupParent", "../up"),
        ("CgroupParent", "a//b"),
        ("CgroupParent", 5),
        ("LogConfig", {"Type": "syslog"}),
        ("LogConfig", "json-file"),
    ):
        with pytest.raises(InvalidArgument):
            run_opts.check_host_config({**good, key: bad})
