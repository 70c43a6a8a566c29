from __future__ import annotations

from typing import Any

import pytest

from portique.engine import config as cfg
from portique.engine.userdb import ResolvedUser
from portique.errors import InvalidArgument

IMAGE = {
    "Env": ["PATH=/usr/bin:/bin", "LANG=C"],
    "Entrypoint": ["/entry"],
    "Cmd": ["--serve"],
    "WorkingDir": "/app",
    "User": "daemon",
    "Volumes": {"/data": {}},
    "Labels": {"a": "1"},
    "StopSignal": "SIGQUIT",
}


def test_user_cmd_replaces_image_cmd_keeps_entrypoint() -> None:
    m = cfg.merge_image_config({"Cmd": ["--debug"], "Entrypoint": None}, IMAGE)
    assert cfg.command_of(m) == ["/entry", "--debug"]


def test_entrypoint_override_clears_image_cmd() -> None:
    m = cfg.merge_image_config({"Cmd": None, "Entrypoint": ["/bin/sh"]}, IMAGE)
    assert cfg.command_of(m) == ["/bin/sh"]
    m = cfg.merge_image_config({"Cmd": ["echo", "x"], "Entrypoint": []}, IMAGE)
    assert cfg.command_of(m) == ["echo", "x"]


def test_no_command() -> None:
    m = cfg.merge_image_config({"Cmd": None, "Entrypoint": []}, {})
    with pytest.raises(InvalidArgument, match="no command specified"):
        cfg.command_of(m)


def test_env_workdir_user_labels_merge() -> None:
    m = cfg.merge_image_config(
        {"Env": ["LANG=fr", "X=1"], "WorkingDir": "", "User": "", "Labels": {"b": "2"}}, IMAGE
    )
    assert m["Env"] == ["PATH=/usr/bin:/bin", "LANG=fr", "X=1"]
    assert m["WorkingDir"] == "/app"
    assert m["User"] == "daemon"
    assert m["Labels"] == {"a": "1", "b": "2"}
    assert m["Volumes"] == {"/data": {}}
    assert m["StopSignal"] == "SIGQUIT"


def test_default_path_added() -> None:
    m = cfg.merge_image_config({"Cmd": ["sh"]}, {})
    assert m["Env"][0] == cfg.DEFAULT_PATH


def _inputs(**kw: Any) -> cfg.SpecInputs:
    base: dict[str, Any] = {
        "container_id": "c" * 64,
        "rootfs": "/r",
        "container_dir": "/d",
        "user": ResolvedUser(0, 0, (), "/root"),
        "mounts": [],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []},
    }
    base.update(kw)
    return cfg.SpecInputs(**base)


def _hard(_: str) -> int:
    return 4096


def test_spec_defaults_are_dockers() -> None:
    config = {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Tty": True}
    spec = cfg.build_spec(config, {}, _inputs(), hard_of=_hard)
    proc = spec["process"]
    assert proc["args"] == ["sh"]
    assert proc["terminal"] is True
    assert "TERM=xterm" in proc["env"]
    assert f"HOSTNAME={'c' * 12}" in proc["env"]
    assert "HOME=/root" in proc["env"]
    assert "CAP_NET_RAW" in proc["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["bounding"]
    assert {"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 4096} in proc["rlimits"]
    linux = spec["linux"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert {"type": "network"} in linux["namespaces"]
    assert linux["cgroupsPath"] == f"/portique/{'c' * 64}"
    dests = [m["destination"] for m in spec["mounts"]]
    for p in (
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/dev/shm",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ):
        assert p in dests
    sysfs = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" in sysfs["options"]
    assert spec["hostname"] == "c" * 12


def test_spec_resources() -> None:
    host = {
        "Memory": 64 << 20,
        "NanoCpus": 500_000_000,
        "CpuShares": 512,
        "CpusetCpus": "0",
        "PidsLimit": 50,
    }
    res = cfg.build_spec({"Cmd": ["sh"]}, host, _inputs(), hard_of=_hard)["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0"}
    assert res["pids"] == {"limit": 50}
    host["MemorySwap"] = -1
    res = cfg.build_spec({"Cmd": ["sh"]}, host, _inputs(), hard_of=_hard)["linux"]["resources"]
    assert res["memory"]["swap"] == -1


def test_spec_privileged_readonly_host_net_init() -> None:
    host = {"Privileged": True, "ReadonlyRootfs": True, "NetworkMode": "host", "Init": True}
    spec = cfg.build_spec(
        {"Cmd": ["sh"]},
        host,
        _inputs(init_binary="/usr/bin/tini-static", host_caps=["CAP_SYS_ADMIN"]),
        hard_of=_hard,
    )
    assert spec["root"]["readonly"] is True
    assert "maskedPaths" not in spec["linux"]
    assert "seccomp" not in spec["linux"]
    assert spec["process"]["capabilities"]["bounding"] == ["CAP_SYS_ADMIN"]
    assert all(ns["type"] != "network" for ns in spec["linux"]["namespaces"])
    assert spec["process"]["args"] == [cfg.INIT_PATH, "--", "sh"]
    assert any(m["destination"] == cfg.INIT_PATH for m in spec["mounts"])


def test_spec_ulimit_above_host_refused() -> None:
    host = {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 100000}]}
    with pytest.raises(InvalidArgument, match="hard limit"):
        cfg.build_spec({"Cmd": ["sh"]}, host, _inputs(), hard_of=_hard)
    host = {"Ulimits": [{"Name": "nproc", "Soft": 10, "Hard": 20}]}
    rl = cfg.build_spec({"Cmd": ["sh"]}, host, _inputs(), hard_of=_hard)["process"]["rlimits"]
    assert {"type": "RLIMIT_NPROC", "soft": 10, "hard": 20} in rl


def test_cap_drop_all_nnp() -> None:
    host = {"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"]}
    proc = cfg.build_spec({"Cmd": ["sh"]}, host, _inputs(), hard_of=_hard)["process"]
    assert proc["capabilities"]["bounding"] == []
    assert proc["noNewPrivileges"] is True


def test_resolv_conf_drops_loopback() -> None:
    out = cfg.resolv_conf("nameserver 127.0.0.53\nsearch lan\n", host_network=False)
    assert "127.0.0.53" not in out
    assert "nameserver 8.8.8.8" in out
    assert "search lan" in out
    assert (
        cfg.resolv_conf("nameserver 127.0.0.53\n", host_network=True) == "nameserver 127.0.0.53\n"
    )
    assert "nameserver 10.0.0.1" in cfg.resolv_conf("nameserver 10.0.0.1\n", False)


def test_hosts_file() -> None:
    text = cfg.hosts_file("web", host_network=False)
    assert "127.0.0.1\tlocalhost" in text
    assert "web" in text


def test_docker_seccomp_profile_conversion() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["mount"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
        ],
    }
    out = cfg.docker_profile_to_oci(profile, ["CAP_KILL"])
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [r["names"] for r in out["syscalls"]] == [["read"]]
    with pytest.raises(InvalidArgument):
        cfg.docker_profile_to_oci({}, [])


def test_hostile_image_config_shapes_are_ignored() -> None:
    image = {
        "Labels": ["not", "a", "map"],
        "Volumes": "x",
        "ExposedPorts": 7,
        "WorkingDir": "app",
        "User": 5,
        "StopSignal": ["TERM"],
        "Cmd": "sh",
    }
    m = cfg.merge_image_config({}, image)
    assert m["Labels"] == {}
    assert m["Volumes"] is None
    assert m["ExposedPorts"] is None
    assert m["WorkingDir"] == "/app"
    assert m["User"] == ""
    assert m["StopSignal"] is None
    assert cfg.command_of(m) == ["sh"]
