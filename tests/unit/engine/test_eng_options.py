from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from portique.engine import options as opt
from portique.errors import InvalidArgument


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12m", 12 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("1.5GiB", 3 << 29),
        ("100", 100),
        ("64MB", 64 << 20),
    ],
)
def test_parse_size(value: str, expected: int) -> None:
    assert opt.parse_size(value) == expected


@pytest.mark.parametrize("value", ["12q", "", "m", "-1m", "1..2m", "12 mbytes"])
def test_parse_size_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        opt.parse_size(value)


def test_memory_error_is_dockers_line() -> None:
    with pytest.raises(InvalidArgument) as exc:
        opt.parse_memory("12q")
    assert str(exc.value) == 'invalid argument "12q" for "-m, --memory" flag: invalid size: \'12q\''


def test_memory_minimum() -> None:
    with pytest.raises(InvalidArgument, match="6MB"):
        opt.parse_memory("1m")
    assert opt.parse_memory("") == 0


def test_memory_swap_rules() -> None:
    assert opt.parse_memory_swap("-1", 64 << 20) == -1
    assert opt.parse_memory_swap("128m", 64 << 20) == 128 << 20
    with pytest.raises(InvalidArgument, match="larger than memory"):
        opt.parse_memory_swap("32m", 64 << 20)
    with pytest.raises(InvalidArgument, match="memory limit"):
        opt.parse_memory_swap("32m", 0)


def test_cpus() -> None:
    assert opt.parse_cpus("1.5") == 1_500_000_000
    assert opt.parse_cpus("0.01") == 10_000_000
    with pytest.raises(InvalidArgument):
        opt.parse_cpus("abc")
    with pytest.raises(InvalidArgument):
        opt.parse_cpus("0.001")


def test_cpuset() -> None:
    assert opt.parse_cpuset("0-1,3") == "0-1,3"
    for bad in ("a", "1-", "3-1", "0,,1"):
        with pytest.raises(InvalidArgument):
            opt.parse_cpuset(bad)


def test_ulimit() -> None:
    u = opt.parse_ulimit("nofile=1024:2048")
    assert (u.name, u.soft, u.hard, u.rlimit) == ("nofile", 1024, 2048, "RLIMIT_NOFILE")
    assert opt.parse_ulimit("nproc=10").hard == 10
    assert opt.parse_ulimit("core=-1").soft == opt.RLIM_INFINITY
    for bad in ("nofile", "bogus=1", "nofile=a", "nofile=10:5"):
        with pytest.raises(InvalidArgument):
            opt.parse_ulimit(bad)


def test_restart() -> None:
    assert opt.parse_restart("no").kind is opt.RestartKind.NO
    p = opt.parse_restart("on-failure:3")
    assert (p.kind, p.max_retries) == (opt.RestartKind.ON_FAILURE, 3)
    assert opt.parse_restart("always").as_docker() == {"Name": "always", "MaximumRetryCount": 0}
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(InvalidArgument):
            opt.parse_restart(bad)


def test_signal() -> None:
    assert opt.parse_signal("SIGTERM") == signal.SIGTERM
    assert opt.parse_signal("kill") == signal.SIGKILL
    assert opt.parse_signal("9") == 9
    assert opt.parse_signal("SIGRTMIN+1") == signal.SIGRTMIN + 1
    with pytest.raises(InvalidArgument):
        opt.parse_signal("SIGNOPE")
    with pytest.raises(InvalidArgument):
        opt.parse_signal("99")


def test_env() -> None:
    assert opt.parse_env(["A=1", "B", "C"], {"B": "x"}) == ["A=1", "B=x"]
    with pytest.raises(InvalidArgument):
        opt.parse_env(["=x"], {})


def test_env_file(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("# comment\n\nA=1\n  B=two words\nHOSTVAR\n")
    assert opt.read_env_file(str(f), {"HOSTVAR": "h"}) == ["A=1", "B=two words", "HOSTVAR=h"]
    with pytest.raises(InvalidArgument, match="cannot read"):
        opt.read_env_file(str(tmp_path / "missing"))


def test_merge_env_user_wins_in_place() -> None:
    assert opt.merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]


def test_volume_specs() -> None:
    v = opt.parse_volume("/host/dir:/data:ro")
    assert (v.type, v.source, v.target, v.readonly, v.create_host_path) == (
        opt.MountType.BIND,
        "/host/dir",
        "/data",
        True,
        True,
    )
    v = opt.parse_volume("myvol:/data")
    assert (v.type, v.source, v.target) == (opt.MountType.VOLUME, "myvol", "/data")
    v = opt.parse_volume("/anon")
    assert (v.type, v.source) == (opt.MountType.VOLUME, "")
    v = opt.parse_volume("/h:/c:rshared")
    assert v.propagation == "rshared"


@pytest.mark.parametrize(
    "spec", ["", "rel/dir:/data", "v:data", "v:/", "a:/b:c:d", "/h:/c:bogus", "bad name:/x"]
)
def test_volume_rejects(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        opt.parse_volume(spec)


def test_mount_specs() -> None:
    m = opt.parse_mount("type=bind,source=/src,target=/dst,readonly")
    assert (m.type, m.source, m.target, m.readonly, m.create_host_path) == (
        opt.MountType.BIND,
        "/src",
        "/dst",
        True,
        False,
    )
    m = opt.parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert m.options == ("size=1048576", "mode=1770")
    m = opt.parse_mount("src=vol,dst=/v")
    assert m.type is opt.MountType.VOLUME
    for bad in (
        "type=nfs,dst=/x",
        "type=bind,src=rel,dst=/x",
        "type=bind,src=/a",
        "type=volume,dst=/x,bogus=1",
    ):
        with pytest.raises(InvalidArgument):
            opt.parse_mount(bad)


def test_tmpfs() -> None:
    t = opt.parse_tmpfs("/run:size=64m,noexec")
    assert (t.target, t.options) == ("/run", ("size=64m", "noexec"))
    with pytest.raises(InvalidArgument):
        opt.parse_tmpfs("/run:size=64m,evil=1")


def test_security_opts() -> None:
    s = opt.parse_security_opts(["seccomp=unconfined", "no-new-privileges"])
    assert (s.seccomp, s.no_new_privileges) == ("unconfined", True)
    assert opt.parse_security_opts(["no-new-privileges:true"]).no_new_privileges
    with pytest.raises(InvalidArgument):
        opt.parse_security_opts(["bogus=1"])


def test_capabilities() -> None:
    assert opt.capabilities([], [], False) == list(opt.DEFAULT_CAPS)
    assert opt.capabilities([], ["ALL"], False) == []
    assert opt.capabilities(["NET_ADMIN"], ["chown"], False)[-1] == "CAP_NET_ADMIN"
    assert "CAP_CHOWN" not in opt.capabilities([], ["chown"], False)
    assert opt.capabilities(["ALL"], [], False) == list(opt.ALL_CAPS)
    assert opt.capabilities([], [], True, ["CAP_KILL"]) == ["CAP_KILL"]
    with pytest.raises(InvalidArgument, match="unknown capability"):
        opt.capabilities(["CAP_FLY"], [], False)


def test_user_and_name() -> None:
    assert opt.parse_user("1000:100") == opt.UserSpec("1000", "100")
    assert opt.parse_user("") is None
    with pytest.raises(InvalidArgument):
        opt.parse_user(":grp")
    assert opt.parse_name("/web") == "web"
    with pytest.raises(InvalidArgument):
        opt.parse_name("bad name")


def test_caps_from_mask(tmp_path: Path) -> None:
    assert opt.caps_from_mask(0xA80425FB) == sorted(opt.DEFAULT_CAPS, key=opt.ALL_CAPS.index)
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    caps = opt.host_capabilities(str(status))
    assert "CAP_SYS_RESOURCE" not in caps
    assert "CAP_SYS_ADMIN" in caps
    assert len(caps) == 40


def test_mounts_from_api_host_config() -> None:
    host = {
        "Binds": ["/h:/c:ro", "vol:/v"],
        "Mounts": [
            {"Type": "bind", "Source": "/s", "Target": "/t", "ReadOnly": True},
            {
                "Type": "tmpfs",
                "Target": "/tm",
                "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777},
            },
        ],
        "Tmpfs": {"/run": "size=64m"},
    }
    got = opt.mounts_from_host_config(host)
    assert [(m.type, m.source, m.target, m.readonly) for m in got] == [
        (opt.MountType.BIND, "/h", "/c", True),
        (opt.MountType.VOLUME, "vol", "/v", False),
        (opt.MountType.BIND, "/s", "/t", True),
        (opt.MountType.TMPFS, "", "/tm", False),
        (opt.MountType.TMPFS, "", "/run", False),
    ]
    assert got[3].options == ("size=1048576", "mode=1777")
    assert opt.mounts_from_host_config({}) == []
    bad: dict[str, Any]
    for bad in (
        {"Binds": "x"},
        {"Mounts": [1]},
        {"Mounts": [{"Type": "bind", "Source": "/a,b", "Target": "/t"}]},
        {"Tmpfs": []},
    ):
        with pytest.raises(InvalidArgument):
            opt.mounts_from_host_config(bad)


@pytest.mark.parametrize(
    "spec",
    [
        "type=bind,source=/h,target=/c,readonly,bind-propagation=rshared",
        "type=volume,source=data,target=/d,volume-nocopy=true",
        "type=volume,target=/anon",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777",
    ],
)
def test_a_mount_round_trips_through_host_config(spec: str) -> None:
    # The CLI stores --mount as HostConfig.Mounts and the engine reads it back, as it
    # reads an API body: nothing the flag said may be lost on the way.
    parsed = opt.parse_mount(spec)
    (back,) = opt.mounts_from_host_config({"Mounts": [parsed.as_docker()]})
    assert back == parsed
