"""Id-mapped bind mounts (mounts[].uidMappings/gidMappings, idmap/ridmap) on
the real kernel: owners seen through the mount, the container's own user
namespace mappings, and a clear refusal where the filesystem cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.errors import InvalidArgument, PortiqueError
from portique.runtime import Runtime
from support.rt_bundle import make_config
from support.rt_run import run_container

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp root is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="rt-idmap-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def data(public_dir: Path) -> Path:
    d = public_dir / "data"
    d.mkdir(mode=0o755)
    for name, owner in (("f0", 0), ("f1000", 1000), ("fout", 70000)):
        (d / name).write_text(name)
        os.chown(d / name, owner, owner)
    return d


def _stat_all(dest: str) -> str:
    return f"for f in {dest}/*; do stat -c '%n %u %g' $f; done"


def test_owners_through_an_idmapped_mount(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, data: Path
) -> None:
    cfg = make_config(["sh", "-c", _stat_all("/data") + "; " + _stat_all("/plain")])
    cfg["mounts"] += [
        {
            "destination": "/data",
            "source": str(data),
            "options": ["bind", "ro", "idmap"],
            "uidMappings": MAP,
            "gidMappings": MAP,
        },
        {"destination": "/plain", "source": str(data), "options": ["bind", "ro"]},
    ]
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    assert out.splitlines() == [
        # on disk N shows as containerID N -> hostID: 0 -> 100000, 1000 -> 101000;
        # 70000 is outside the mapping: the overflow id
        "/data/f0 100000 100000",
        "/data/f1000 101000 101000",
        "/data/fout 65534 65534",
        "/plain/f0 0 0",
        "/plain/f1000 1000 1000",
        "/plain/fout 70000 70000",
    ]
    # The host's files are untouched.
    assert (data / "f1000").stat().st_uid == 1000


def test_idmap_without_mappings_uses_the_containers_user_namespace(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, public_dir: Path, data: Path
) -> None:
    rootfs = public_dir / "rootfs"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(rootfs)], check=True)
    subprocess.run(["chown", "-R", "100000:100000", str(rootfs)], check=True)
    os.chmod(data, 0o755)
    script = "stat -c '%u' /data/f0 /plain/f0; touch /data/new && echo wrote; touch /plain/x || echo plain-refused"
    cfg = make_config(["sh", "-c", script])
    cfg["root"]["path"] = str(rootfs)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = MAP
    cfg["linux"]["gidMappings"] = MAP
    cfg["mounts"] += [
        {"destination": "/data", "source": str(data), "options": ["bind", "idmap"]},
        {"destination": "/plain", "source": str(data), "options": ["bind"]},
    ]
    code, out = run_container(rt, tmp_path, rootfs, cfg)
    # The container's root owns what root owns on disk, and writes as root;
    # without the idmap the same files are nobody's and read-only to it.
    lines = out.splitlines()
    assert lines[:3] == ["0", "65534", "wrote"], out
    assert lines[-1] == "plain-refused", out
    assert (data / "new").stat().st_uid == 0
    assert code == 0


def test_ridmap_maps_submounts_too(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, data: Path, public_dir: Path
) -> None:
    sub = data / "sub"
    sub.mkdir()
    inner = public_dir / "inner"
    inner.mkdir()
    (inner / "g").write_text("g")
    subprocess.run(["mount", "--bind", str(inner), str(sub)], check=True)
    try:
        cfg = make_config(["stat", "-c", "%u", "/r/sub/g", "/i/sub/g"])
        base = {"source": str(data), "uidMappings": MAP, "gidMappings": MAP}
        cfg["mounts"] += [
            {**base, "destination": "/r", "options": ["rbind", "ridmap"]},
            {**base, "destination": "/i", "options": ["rbind", "idmap"]},
        ]
        code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    finally:
        subprocess.run(["umount", str(sub)], check=True)
    assert code == 0, out
    # ridmap maps the submount as well; idmap only the top of the tree.
    assert out.split() == ["100000", "0"]


def test_filesystem_without_idmap_support_is_refused(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    cfg = make_config(["true"])
    cfg["mounts"].append(
        {
            "destination": "/k",
            "source": "/proc/sys/kernel",
            "options": ["bind", "ro", "idmap"],
            "uidMappings": MAP,
            "gidMappings": MAP,
        }
    )
    with pytest.raises(
        PortiqueError,
        match=r"mounts\[\d+\] /k: idmap of /proc/sys/kernel: its filesystem does not support id-mapped mounts",
    ):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert rt.list() == []


@pytest.mark.parametrize(
    ("mount", "needle"),
    [
        ({"options": ["bind", "idmap"]}, "idmap without uidMappings needs a new user namespace"),
        ({"options": ["bind"], "uidMappings": MAP}, "uidMappings and gidMappings go together"),
        (
            {
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["idmap"],
                "uidMappings": MAP,
                "gidMappings": MAP,
            },
            "idmap is supported on bind mounts only",
        ),
    ],
)
def test_idmap_config_errors(
    rt: Runtime,
    tmp_path: Path,
    busybox_rootfs: Path,
    data: Path,
    mount: dict[str, object],
    needle: str,
) -> None:
    cfg = make_config(["true"])
    cfg["mounts"].append({"destination": "/m", "source": str(data), **mount})
    with pytest.raises(InvalidArgument, match=needle):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
