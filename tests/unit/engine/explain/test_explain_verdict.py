"""The verdict and the text rendering, from synthetic facts."""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from typing import Any

from portique.cli.explain_text import render
from portique.engine.explain import model as m
from portique.engine.explain.verdict import weakenings
from portique.linux.caps import CAPABILITIES
from portique.runtime.probe import DeviceResult, SyscallResult
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS

KINDS = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def _namespaces(shared: set[str]) -> m.Namespaces:
    items = [
        m.Namespace(
            k,
            10 + i,
            10 + i if k in shared else 90 + i,
            k in shared,
            f"/proc/7/ns/{k}",
            f"/proc/1/ns/{k}",
        )
        for i, k in enumerate(KINDS)
    ]
    ident = [m.IdRange(0, 0, 4294967295)]
    return m.Namespaces(items, ident, ident, "/proc/7/uid_map", "/proc/7/gid_map")


def _privileges(caps: list[str], seccomp: str = "filter", **kw: Any) -> m.Privileges:
    ids = m.Ids(0, 0, 0, 0)
    base = m.Privileges(
        host_uid=ids, host_gid=ids, uid=ids, gid=ids, host_groups=[], groups=[],
        capabilities={"effective": caps, "permitted": caps, "inheritable": [], "bounding": caps, "ambient": []},
        no_new_privs=False, seccomp_mode=seccomp, seccomp_filters=1 if seccomp == "filter" else 0,
        lsm_label="", source="/proc/7/status",
        syscall_probe=m.Probe(True, "kernel" if seccomp == "filter" else "", ""),
        syscalls=[m.SyscallCheck("mount", "mount(NULL, ...)", "mount", "denied" if seccomp == "filter" else "allowed", "EPERM", "EFAULT")],
        device_rules=None, device_rules_source="", device_probe=m.Probe(True, "", ""),
        devices=[m.DeviceCheck("c 1:3", "null", "allowed", "ok", "ok", "ok"),
                 m.DeviceCheck("b 7:0", "loop0", "denied", "EPERM", "ok", "ok")],
        device_nodes=[],
    )  # fmt: skip
    return replace(base, **kw)


def _fs(**kw: Any) -> m.Filesystem:
    base = m.Filesystem(
        root=m.RootFs("overlay", False, ["/l"], "/u", "/w", "/proc/7/mountinfo"),
        mounts=[m.Mount("/proc", "proc", "proc", "/", "", ["rw"], ["rw"], False, "proc")],
        masked=[m.Masked("/proc/keys", "null-device")], unmasked=[], read_only=["/proc/sys"],
        sys_writable=False, volumes=[], source="/proc/7/mountinfo",
    )  # fmt: skip
    return replace(base, **kw)


def _res(version: str = "v1") -> m.Resources:
    return m.Resources(
        version, {}, [m.Value("memory.max", None, "max", "/x/memory.max")], [], {}, False, ""
    )


def _ids(ws: list[m.Weakening]) -> list[str]:
    return [w.id for w in ws]


def _verdict(
    ns: m.Namespaces,
    fs: m.Filesystem,
    res: m.Resources,
    pr: m.Privileges,
    grantable: set[str] | None = None,
) -> list[m.Weakening]:
    return weakenings(
        (ns, fs, res, pr),
        pid=7,
        grantable=set(CAPABILITIES) if grantable is None else grantable,
        stat_in_root=lambda pid, path: None,
    )


def test_default_is_only_the_shared_root_note() -> None:
    ws = _verdict(
        _namespaces({"time", "user"}), _fs(), _res(), _privileges(list(DOCKER_DEFAULT_CAPS))
    )
    assert _ids(ws) == ["root"]
    assert ws[0].docker_default


def test_added_capability_names_its_flag() -> None:
    pr = _privileges([*DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN", "CAP_NET_ADMIN"])
    ws = _verdict(_namespaces({"time", "user"}), _fs(), _res(), pr)
    flags = {w.id: w.flag for w in ws}
    assert flags["capability:CAP_SYS_ADMIN"] == "--cap-add SYS_ADMIN"
    assert flags["capability:CAP_NET_ADMIN"] == "--cap-add NET_ADMIN"


def test_privileged_folds_what_it_implies() -> None:
    pr = _privileges(list(CAPABILITIES), seccomp="disabled")
    fs = _fs(masked=[], unmasked=["/proc/keys"], sys_writable=True, read_only=[])
    ws = _verdict(_namespaces({"time", "user"}), fs, _res(), pr)
    assert _ids(ws) == ["privileged", "root"]
    assert ws[0].flag == "--privileged"


def test_unconfined_without_privileged() -> None:
    pr = _privileges(list(DOCKER_DEFAULT_CAPS), seccomp="disabled")
    ws = _verdict(_namespaces({"time", "user"}), _fs(), _res(), pr)
    assert _ids(ws) == ["seccomp", "root"]
    assert ws[0].flag == "--security-opt seccomp=unconfined"


def test_host_namespaces_and_cgroup_v2() -> None:
    ns = _namespaces({"time", "user", "pid", "net", "cgroup"})
    pr = _privileges(list(DOCKER_DEFAULT_CAPS))
    flags = [w.flag for w in _verdict(ns, _fs(), _res("v1"), pr)]
    assert "--pid host" in flags
    assert "--network host" in flags
    assert "--cgroupns host" not in flags  # Docker's default on cgroup v1
    flags = [w.flag for w in _verdict(ns, _fs(), _res("v2"), pr)]
    assert "--cgroupns host" in flags


def test_user_namespace_root_is_not_host_root() -> None:
    pr = _privileges(list(DOCKER_DEFAULT_CAPS), host_uid=m.Ids(100000, 100000, 100000, 100000))
    ws = _verdict(_namespaces({"time"}), _fs(), _res(), pr)
    assert ws == []


def test_unmasked_and_extra_devices() -> None:
    pr = _privileges(
        list(DOCKER_DEFAULT_CAPS),
        devices=[m.DeviceCheck("b 7:0", "loop0", "allowed", "ENXIO", "ENXIO", "ok")],
    )
    fs = _fs(masked=[], unmasked=["/proc/keys"], read_only=[])
    ws = _verdict(_namespaces({"time", "user"}), fs, _res(), pr)
    assert {w.id: w.flag for w in ws} == {
        "unmasked-paths": "--security-opt systempaths=unconfined",
        "proc-sys-writable": "--security-opt systempaths=unconfined",
        "device:b 7:0": "--device (or --device-cgroup-rule 'b 7:0 r')",
        "root": "no --user (Docker's default too)",
    }


def test_probe_verdicts() -> None:
    def s(without: int, with_: int, nr: int | None = 1) -> str:
        return SyscallResult("x", "x()", "", nr, without, with_).verdict

    assert s(errno.EFAULT, errno.EPERM) == "denied"
    assert s(errno.EFAULT, -31) == "denied"  # killed by SIGSYS
    assert s(errno.EFAULT, errno.EFAULT) == "allowed"
    assert s(errno.EPERM, errno.EPERM) == "unknown"
    assert s(errno.ENOSYS, errno.ENOSYS, None) == "absent"

    def d(outside: int, inside: int) -> str:
        return DeviceResult("c", 1, 1, "mem", outside, inside, 0).verdict

    assert (d(0, errno.EPERM), d(0, 0), d(errno.EPERM, errno.EPERM)) == (
        "denied",
        "allowed",
        "unknown",
    )


def test_text_and_json_of_a_report() -> None:
    ns = _namespaces({"time", "user"})
    pr = _privileges(list(DOCKER_DEFAULT_CAPS))
    report = m.Report(
        target=m.Target("a" * 64, "web", "portique", "running", 7, 1, "PID 1, the host's init"),
        kernel=m.Kernel("6.1.0", "/proc/sys/kernel/osrelease", "b", "/proc/sys/kernel/random/boot_id", "b", "/proc/7/root/proc/sys/kernel/random/boot_id", True),
        namespaces=ns,
        processes=m.Processes(False, [m.Process(7, 1, [7, 1], 6, 0, "sleep 60", "/proc/7/status")], 1, "/proc/*/ns/pid"),
        filesystem=_fs(), resources=_res(), privileges=pr,
        network=m.Network(False, [m.Interface("lo", "loopback", "UNKNOWN", "", 65536, ["127.0.0.1/8"])], [], "netlink", ["10.0.0.1"], [], "/proc/7/root/etc/resolv.conf", [], "nft"),
        verdict=_verdict(ns, _fs(), _res(), pr),
    )  # fmt: skip
    text = render(report)
    assert text.startswith("portique explain: container aaaaaaaaaaaa (web), running")
    assert "(/proc/7/ns/pid) its own process numbers" in text
    assert "(/proc/7/ns/user) the host's uids and gids" in text
    assert "    1           7            0            sleep 60" in text
    assert "nothing: this container is as confined as Docker's defaults make one" in text
    doc = json.loads(json.dumps(m.to_json(report)))
    assert list(doc)[:2] == ["schema_version", "target"]
    assert doc["namespaces"]["items"][4] == {
        "type": "pid", "inode": 14, "host_inode": 94, "shared": False,
        "source": "/proc/7/ns/pid", "reference": "/proc/1/ns/pid",
    }  # fmt: skip
