"""The rootless engine's pure pieces: its state roots, /etc/subuid parsing,
port and limit checks, the no-cgroup manager, overlayfs's private xattrs,
user namespace detection, the user-mode network's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from portique.engine import rootless, usernet
from portique.errors import PortiqueError
from portique.image import ovlxattr
from portique.linux.ns import in_user_namespace
from portique.network.types import PortMapping, Proto
from portique.oci.resources import parse_resources
from portique.runtime.cgroups.base import CgroupError
from portique.runtime.cgroups.none import NoCgroupManager, limits_set
from portique.subids import subid_range


def test_roots_follow_xdg_then_home_then_tmp() -> None:
    env = {"XDG_DATA_HOME": "/d", "XDG_RUNTIME_DIR": "/r", "HOME": "/h"}
    assert rootless.default_roots(env, 1001) == (Path("/d/portique"), Path("/r/portique"))
    # relative XDG values are ignored, as the XDG spec says
    env = {"XDG_DATA_HOME": "rel", "XDG_RUNTIME_DIR": "rel", "HOME": "/h"}
    assert rootless.default_roots(env, 1001) == (
        Path("/h/.local/share/portique"),
        Path("/tmp/portique-1001"),
    )


def test_subid_range_by_name_or_uid(tmp_path: Path) -> None:
    f = tmp_path / "subuid"
    f.write_text("other:1:2\nbroken\nalice:x:5\nalice:200000:65536\n1002:300000:10\n")
    assert subid_range(str(f), "alice", 1001) == (200000, 65536)
    assert subid_range(str(f), "bob", 1002) == (300000, 10)
    assert subid_range(str(f), "carol", 1003) is None
    assert subid_range(str(tmp_path / "missing"), "alice", 1001) is None


def test_low_ports_name_the_sysctl() -> None:
    rootless.check_ports([0, 1024, 8080], 1024)
    with pytest.raises(PortiqueError, match=r"= 1024\)$") as err:
        rootless.check_ports([8080, 80], 1024)
    assert "net.ipv4.ip_unprivileged_port_start" in str(err.value)
    rootless.check_ports([80], 0)


def test_no_limits_asked_needs_no_cgroup() -> None:
    rootless.check_limits({"Memory": 0, "PidsLimit": -1, "NanoCpus": None})


def test_no_cgroup_manager_refuses_limits_not_device_rules() -> None:
    mgr = NoCgroupManager("/portique/x")
    devices = parse_resources({"devices": [{"allow": False, "access": "rwm"}]})
    mgr.apply(devices)
    mgr.apply(parse_resources({"memory": {}}))
    assert limits_set(parse_resources({"memory": {"limit": 1 << 20}})) == ["memory"]
    with pytest.raises(CgroupError, match=r"linux.resources.pids"):
        mgr.apply(parse_resources({"pids": {"limit": 5}}))
    with pytest.raises(CgroupError, match="cannot pause"):
        mgr.freeze()
    assert (mgr.pids(), mgr.dirs(), mgr.exists()) == ([], {}, False)


def test_overlay_private_xattrs() -> None:
    assert ovlxattr.is_private("user.overlay.opaque")
    assert ovlxattr.is_private("trusted.overlay.redirect")
    assert not ovlxattr.is_private("user.mime_type")


def test_user_namespace_detection(tmp_path: Path) -> None:
    initial = tmp_path / "initial"
    initial.write_text("         0          0 4294967295\n")
    inner = tmp_path / "inner"
    inner.write_text("0 1001 1\n1 100000 65536\n")
    assert not in_user_namespace(str(initial))
    assert in_user_namespace(str(inner))


def test_user_mode_network_settings() -> None:
    ports = [PortMapping(80, 8080, "127.0.0.1", Proto.TCP)]
    out = usernet.settings(ports)
    assert out["IPAddress"] == "10.0.2.100"
    assert out["Gateway"] == "10.0.2.2"
    assert out["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}


def test_storage_driver_choice_and_the_neither_error(tmp_path: Path) -> None:
    import errno

    from portique.image import fuseoverlay

    assert fuseoverlay.chosen(tmp_path) is None
    (tmp_path / "storage-driver").write_text("fuse-overlayfs\n")
    assert fuseoverlay.chosen(tmp_path) == "fuse-overlayfs"
    (tmp_path / "storage-driver").write_text("zfs\n")
    with pytest.raises(PortiqueError, match="unknown storage driver 'zfs'"):
        fuseoverlay.chosen(tmp_path)
    err = fuseoverlay.neither(
        OSError(errno.EPERM, "Operation not permitted"), OSError(errno.ENOENT, "not installed")
    )
    assert "Linux 5.11" in str(err)
    assert "fuse-overlayfs" in str(err)
    assert "\n" not in str(err)
