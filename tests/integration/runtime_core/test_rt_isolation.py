"""A container from a busybox bundle, checked from inside with busybox probes:
namespaces, PID 1, hostname, mounts, devices, masks, sysctl, the process spec."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from portique.runtime import Runtime
from support.rt_bundle import make_config
from support.rt_run import kv, run_container


def sh(script: str, **changes: Any) -> dict[str, Any]:
    return make_config(["sh", "-c", script], **changes)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_namespaces_differ_from_host_and_init_is_pid_1(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    script = "echo self=$$; for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done"
    code, out = run_container(rt, tmp_path, busybox_rootfs, sh(script))
    assert code == 0, out
    got = kv(out)
    assert got["self"] == "1"
    for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert got[n].startswith(f"{n}:[")
        assert got[n] != os.readlink(f"/proc/self/ns/{n}"), n
    # The user namespace was not asked for: shared with the host.
    code, out = run_container(rt, tmp_path, busybox_rootfs, sh("readlink /proc/self/ns/user"))
    assert out.strip() == os.readlink("/proc/self/ns/user")


def test_exit_status_is_returned(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    code, _ = run_container(rt, tmp_path, busybox_rootfs, sh("exit 7"))
    assert code == 7
    # Without a pid namespace the shell is not an init, so SIGKILL reaches it.
    cfg = sh("kill -9 $$")
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    code, _ = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 128 + 9


def test_hostname_and_domainname(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh("echo h=$(hostname); echo d=$(cat /proc/sys/kernel/domainname)")
    cfg["hostname"] = "box1"
    cfg["domainname"] = "example.test"
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert kv(out) == {"h": "box1", "d": "example.test"}
    assert os.uname().nodename != "box1"


def test_readonly_root(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh("touch /x 2>&1; echo rc=$?; touch /tmp/x; echo tmp=$?")
    cfg["root"]["readonly"] = True
    cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert "Read-only file system" in out
    assert kv(out)["rc"] == "1"
    assert kv(out)["tmp"] == "0"


def _mounts_inside(
    rt: Runtime, tmp_path: Path, rootfs: Path, cfg: dict[str, Any]
) -> dict[str, tuple[str, str]]:
    code, out = run_container(rt, tmp_path, rootfs, cfg)
    assert code == 0, out
    mounts = {}
    for line in out.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        mounts[fields[4]] = (rfields[0], fields[5])  # mountpoint -> (fstype, options)
    return mounts


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_each_mount_type(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    src = tmp_path / "shared"
    src.mkdir()
    (src / "hello").write_text("from the host\n")
    cfg = sh("cat /proc/self/mountinfo")
    cfg["mounts"] += [
        {
            "destination": "/data",
            "type": "bind",
            "source": str(src),
            "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "relatime", "rprivate"],
        },
        {"destination": "/rw", "source": str(src), "options": ["bind"]},
        {
            "destination": "/scratch",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["size=1m", "mode=700"],
        },
    ]
    m = _mounts_inside(rt, tmp_path, busybox_rootfs, cfg)
    assert m["/proc"][0] == "proc"
    assert m["/sys"][0] == "sysfs"
    assert "ro" in m["/sys"][1].split(",")
    assert m["/dev"][0] == "tmpfs"
    assert m["/dev/pts"][0] == "devpts"
    assert m["/dev/shm"][0] == "tmpfs"
    assert m["/dev/mqueue"][0] == "mqueue"
    assert m["/scratch"][0] == "tmpfs"
    cgroup_types = {fs for mp, (fs, _) in m.items() if mp.startswith("/sys/fs/cgroup")}
    assert cgroup_types & {"cgroup", "cgroup2"}
    data_opts = m["/data"][1].split(",")
    assert {"ro", "nosuid", "nodev", "noexec", "relatime"} <= set(data_opts)
    assert "rw" in m["/rw"][1].split(",")


def test_bind_mount_ro_is_enforced(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    src = tmp_path / "shared"
    src.mkdir()
    cfg = sh("cat /data/f; touch /data/new; echo rc=$?")
    (src / "f").write_text("content\n")
    cfg["mounts"].append({"destination": "/data", "source": str(src), "options": ["bind", "ro"]})
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert "content" in out
    assert kv(out)["rc"] == "1"
    assert not (src / "new").exists()


def test_default_devices_and_links(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    script = (
        "for d in null zero full random urandom tty; do echo $d=$(stat -c '%F %t:%T %a' /dev/$d); done;"
        "echo ptmx=$(readlink /dev/ptmx); echo fd=$(readlink /dev/fd); echo stdin=$(readlink /dev/stdin);"
        "echo stdout=$(readlink /dev/stdout); echo stderr=$(readlink /dev/stderr);"
        "echo shm=$(stat -c %F /dev/shm); head -c 4 /dev/zero | wc -c | sed 's/^/zero4=/'"
    )
    code, out = run_container(rt, tmp_path, busybox_rootfs, sh(script))
    assert code == 0, out
    got = kv(out)
    assert got["null"] == "character special file 1:3 666"
    assert got["zero"] == "character special file 1:5 666"
    assert got["full"] == "character special file 1:7 666"
    assert got["random"] == "character special file 1:8 666"
    assert got["urandom"] == "character special file 1:9 666"
    assert got["tty"] == "character special file 5:0 666"
    assert got["ptmx"] == "pts/ptmx"
    assert got["fd"] == "/proc/self/fd"
    assert (got["stdin"], got["stdout"], got["stderr"]) == (
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
    )
    assert got["shm"] == "directory"
    assert got["zero4"] == "4"


def test_linux_devices(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh(
        "stat -c '%F %t:%T %a %u:%g' /dev/fuse /dev/sub/mynull; echo x > /dev/sub/mynull; echo rc=$?;"
        "stat -c 'fifo=%F %a' /dev/myfifo"
    )
    cfg["linux"]["devices"] = [
        {
            "path": "/dev/fuse",
            "type": "c",
            "major": 10,
            "minor": 229,
            "fileMode": 0o600,
            "uid": 0,
            "gid": 0,
        },
        {
            "path": "/dev/sub/mynull",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o640,
            "uid": 1,
            "gid": 1,
        },
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620},
    ]
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert "character special file a:e5 600 0:0" in out
    assert "character special file 1:3 640 1:1" in out
    assert kv(out)["rc"] == "0"
    assert kv(out)["fifo"] == "fifo 620"


def test_masked_and_readonly_paths(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    script = (
        "echo timers=$(wc -c < /proc/timer_list); echo acpi=$(ls /proc/acpi | wc -l);"
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; echo sys=$?;"
        "touch /sys/firmware/x 2>/dev/null; echo fw=$?"
    )
    _code, out = run_container(rt, tmp_path, busybox_rootfs, sh(script))
    got = kv(out)
    assert got["timers"] == "0"  # non-empty on the host
    assert Path("/proc/timer_list").read_text()
    assert got["acpi"] == "0"
    assert got["sys"] != "0"
    assert got["fw"] != "0"


def test_sysctl(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert out.split() == ["1", "1234"]
    assert Path("/proc/sys/kernel/shmmni").read_text().strip() != "1234"


def test_user_groups_umask(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh(
        "echo id=$(id -u):$(id -g); echo groups=$(id -G); echo umask=$(umask); touch /tmp/f; stat -c 'mode=%a' /tmp/f"
    )
    cfg["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 0o077}
    cfg["mounts"].append(
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}
    )
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    got = kv(out)
    assert got["id"] == "1000:1001"
    assert set(got["groups"].split()) == {"1001", "5", "7"}
    assert got["umask"] == "0077"
    assert got["mode"] == "600"


def test_rlimits(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh("echo soft=$(ulimit -Sn); echo hard=$(ulimit -Hn); echo core=$(ulimit -c)")
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256},
        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
    ]
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert kv(out) == {"soft": "256", "hard": "512", "core": "0"}


def test_rlimit_above_hard_limit_fails_clearly(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    import resource

    import pytest

    from portique.errors import PortiqueError

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cfg = sh("true")
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard + 1, "soft": hard + 1}]
    with pytest.raises(PortiqueError, match="setrlimit RLIMIT_NOFILE"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)


def test_capabilities_all_five_sets(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = sh("grep ^Cap /proc/self/status | tr -d '\\t' | tr : =")
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_KILL"],
    }
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    got = {k: int(v, 16) for k, v in kv(out).items()}
    bit = {"CHOWN": 1 << 0, "KILL": 1 << 5, "NET_RAW": 1 << 13, "SETPCAP": 1 << 8}
    assert got["CapBnd"] == bit["CHOWN"] | bit["KILL"] | bit["NET_RAW"] | bit["SETPCAP"]
    assert got["CapInh"] == bit["KILL"] | bit["NET_RAW"]
    assert got["CapAmb"] == bit["KILL"]
    # execve as root: permitted = (inheritable & file) | bounding-limited full set
    # only for a root execve; the shell runs as uid 0, so its sets are the
    # bounding set; the ambient set survives.
    assert got["CapEff"] == got["CapPrm"]


def test_capabilities_non_root_keep_ambient(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    cfg = sh("grep ^Cap /proc/self/status | tr -d '\\t' | tr : =")
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    got = {k: int(v, 16) for k, v in kv(out).items()}
    nbs = 1 << 10
    assert got == {
        "CapInh": nbs,
        "CapPrm": nbs,
        "CapEff": nbs,
        "CapBnd": 1 | nbs,
        "CapAmb": nbs,
    }


def test_no_new_privileges_and_oom_score_adj(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    cfg = sh(
        "grep NoNewPrivs /proc/self/status | tr -d '\\t' | tr : =; echo oom=$(cat /proc/self/oom_score_adj)"
    )
    cfg["process"]["noNewPrivileges"] = True
    cfg["process"]["oomScoreAdj"] = 345
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert kv(out) == {"NoNewPrivs": "1", "oom": "345"}
    cfg["process"]["noNewPrivileges"] = False
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert kv(out)["NoNewPrivs"] == "0"


def test_args_env_cwd(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = make_config(
        ["sh", "-c", 'echo "args=$0 $1"; echo foo=$FOO; echo cwd=$(pwd)', "zero", "one"]
    )
    cfg["process"]["env"].append("FOO=bar baz")
    cfg["process"]["cwd"] = "/etc"
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert kv(out) == {"args": "zero one", "foo": "bar baz", "cwd": "/etc"}
