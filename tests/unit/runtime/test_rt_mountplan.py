"""runtime/mountplan.py: the mount sequence as data, computed from the spec alone."""

from __future__ import annotations

import errno
from typing import Any

from portique.linux import mount as m
from portique.oci.runtime import Spec, parse_spec
from portique.runtime import mountplan as mp
from portique.runtime.default_spec import default_spec

RO_NOSUID = m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC


def _spec(mounts: list[dict[str, Any]] | None = None, **linux: Any) -> Spec:
    doc = default_spec()
    if mounts is not None:
        doc["mounts"] = mounts
    doc["linux"].update(linux)
    return parse_spec(doc)


def test_default_spec_plan_in_order() -> None:
    spec = _spec()
    steps = mp.plan_mounts(spec, "/b", mp.CgroupInfo("v2", (("", "/sys/fs/cgroup/p/c"),)), False)
    assert steps[0] == mp.Propagate("linux.rootfsPropagation", None, m.MS_PRIVATE | m.MS_REC)
    assert steps[1] == mp.BindRootfs("root.path")
    kinds = [(type(s).__name__, getattr(s, "dest", None)) for s in steps[2:]]
    assert kinds == [
        ("MountFs", "/proc"),
        ("MountFs", "/dev"),
        ("MountFs", "/dev/pts"),
        ("MountFs", "/dev/shm"),
        ("MountFs", "/dev/mqueue"),
        ("MountFs", "/sys"),
        ("MountFs", "/sys/fs/cgroup"),
    ]
    proc, dev, pts, *_ = steps[2:]
    assert isinstance(proc, mp.MountFs)
    assert proc.plain_dir
    assert not proc.owned
    assert proc.field == "mounts[0] /proc"
    assert isinstance(dev, mp.MountFs)
    assert dev.owned
    assert not dev.plain_dir
    assert dev.data == "mode=755,size=65536k"
    assert dev.flags == m.MS_NOSUID | m.MS_STRICTATIME
    assert isinstance(pts, mp.MountFs)
    assert pts.fstype == "devpts"
    assert not pts.owned
    sysfs = steps[7]
    assert isinstance(sysfs, mp.MountFs)
    assert sysfs.plain_dir
    assert sysfs.flags == RO_NOSUID
    assert sysfs.fallback is None


def test_cgroup2_mount_falls_back_to_the_containers_own_directory() -> None:
    spec = _spec()
    info = mp.CgroupInfo("v2", (("", "/sys/fs/cgroup/portique/c1"),))
    cg = mp.plan_mounts(spec, "/b", info, False)[-1]
    assert isinstance(cg, mp.MountFs)
    assert (cg.fstype, cg.source, cg.dest) == ("cgroup2", "cgroup", "/sys/fs/cgroup")
    # EBUSY: the host's cgroup2 mount already sits there (a rootless spec
    # binds the host's /sys); EPERM: no cgroup namespace of its own.
    assert cg.fallback_on == (errno.EPERM, errno.EBUSY)
    assert cg.fallback == mp.Bind(
        "mounts[6] /sys/fs/cgroup",
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/portique/c1",
        True,
        RO_NOSUID | m.MS_RELATIME,
    )


def test_cgroup_v1_is_a_tmpfs_with_each_hierarchy_bound_in() -> None:
    spec = _spec()
    info = mp.CgroupInfo(
        "v1",
        (
            ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/p/c"),
            ("memory", "/sys/fs/cgroup/memory/p/c"),
        ),
    )
    steps = mp.plan_mounts(spec, "/b", info, False)
    start = next(i for i, s in enumerate(steps) if getattr(s, "dest", "") == "/sys/fs/cgroup")
    f = "mounts[6] /sys/fs/cgroup"
    hier = m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | m.MS_RDONLY
    assert steps[start:] == [
        mp.MountFs(
            f, "/sys/fs/cgroup", "tmpfs", "cgroup", hier & ~m.MS_RDONLY | m.MS_RELATIME, "mode=755"
        ),
        mp.Bind(f, "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/p/c", True, hier),
        mp.Symlink(f, "/sys/fs/cgroup", "cpu", "cpu,cpuacct"),
        mp.Symlink(f, "/sys/fs/cgroup", "cpuacct", "cpu,cpuacct"),
        mp.Bind(f, "/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/p/c", True, hier),
        mp.RemountFs(f, "/sys/fs/cgroup", RO_NOSUID),
    ]


def test_bind_mounts_relative_source_flags_and_propagation() -> None:
    spec = _spec(
        [
            {"destination": "/data", "type": "bind", "source": "vol", "options": ["ro", "rshared"]},
            {"destination": "/x", "type": "none", "source": "/srv", "options": ["rbind", "nosuid"]},
            {"destination": "/y", "type": "none", "source": "/srv", "options": ["bind"]},
        ]
    )
    steps = mp.plan_mounts(spec, "/bundle", None, False)[2:]
    assert steps == [
        mp.Bind("mounts[0] /data", "/data", "/bundle/vol", False, m.MS_RDONLY),
        mp.Propagate("mounts[0] /data", "/data", m.MS_SHARED | m.MS_REC),
        mp.Bind("mounts[1] /x", "/x", "/srv", True, m.MS_NOSUID),
        mp.Bind("mounts[2] /y", "/y", "/srv", False, 0),
    ]


def test_idmapped_mounts_are_attached_not_bound() -> None:
    mapping = [{"containerID": 0, "hostID": 1000, "size": 1}]
    mnt = {"destination": "/d", "type": "bind", "source": "/srv", "options": ["idmap", "ro"]}
    spec = _spec(
        [{**mnt, "uidMappings": mapping, "gidMappings": mapping}],
    )
    steps = mp.plan_mounts(spec, "/b", None, True, frozenset({0}))
    assert steps[2:] == [mp.AttachIdmapped("mounts[0] /d", "/d", 0, m.MS_RDONLY)]


def test_sysfs_in_a_user_namespace_may_fall_back_to_the_hosts() -> None:
    spec = _spec([{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}])
    (sysfs,) = mp.plan_mounts(spec, "/b", None, True)[2:]
    assert isinstance(sysfs, mp.MountFs)
    assert sysfs.fallback == mp.Bind("mounts[0] /sys", "/sys", "/sys", True, m.MS_RDONLY)
    assert sysfs.fallback_on == (errno.EPERM,)
    (no_userns,) = mp.plan_mounts(spec, "/b", None, False)[2:]
    assert isinstance(no_userns, mp.MountFs)
    assert no_userns.fallback is None


def test_slave_root_propagation_first_shared_after_pivot() -> None:
    slave = _spec(rootfsPropagation="rslave")
    assert mp.plan_mounts(slave, "/b", None, False)[0] == mp.Propagate(
        "linux.rootfsPropagation", None, m.MS_SLAVE | m.MS_REC
    )
    assert not any(isinstance(s, mp.Propagate) for s in mp.plan_finish(slave))
    shared = _spec(rootfsPropagation="shared")
    assert mp.plan_mounts(shared, "/b", None, False)[0].flags == m.MS_PRIVATE | m.MS_REC  # type: ignore[union-attr]
    assert mp.plan_finish(shared)[-1] == mp.Propagate(
        "linux.rootfsPropagation shared", "/", m.MS_SHARED
    )


def test_finish_plan_sysctl_readonly_masked_then_root() -> None:
    spec = _spec(
        sysctl={"net.ipv4.ip_forward": "1"},
        maskedPaths=["/proc/kcore", "/sys/firmware"],
        readonlyPaths=["/proc/sys"],
    )
    assert mp.plan_finish(spec) == [
        mp.Sysctl("linux.sysctl net.ipv4.ip_forward", "net.ipv4.ip_forward", "1"),
        mp.ReadOnlyPath("linux.readonlyPaths /proc/sys", "/proc/sys"),
        mp.MaskPath("linux.maskedPaths /proc/kcore", "/proc/kcore"),
        mp.MaskPath("linux.maskedPaths /sys/firmware", "/sys/firmware"),
        mp.ReadOnlyRoot("root.readonly"),
    ]
