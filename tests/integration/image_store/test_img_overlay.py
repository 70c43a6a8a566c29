"""Root-only image-store behaviour: ownership, devices, whiteouts, overlay mounts."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.image.images import ImageRecord, Images
from portique.image.snapshots import overlay_data
from portique.image.unpack import OPAQUE_XATTR, InvalidLayer, unpack
from portique.linux.mount import is_mountpoint
from support import oci_build as ob
from support.imgstore_tars import RawTar


@pytest.fixture
def imgs(tmp_path: Path) -> Iterator[Images]:
    images = Images(tmp_path / "root")
    yield images
    # Never leave a mount behind, even when a test fails half-way.
    for d in (tmp_path / "containers").glob("*"):
        images.unmount_rootfs(d)
    images.close()


def register(imgs: Images, img: ob.BuiltImage, tag: str) -> ImageRecord:
    for digest, data in img.blobs():
        imgs.store.write_bytes(data, digest)
    return imgs.register(img.manifest, img.manifest_digest, img.config, tags=[tag])


def unpack_raw(tmp_path: Path, tar: bytes) -> Path:
    dest = tmp_path / "snap"
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        unpack(io.BytesIO(tar), fd)
    finally:
        os.close(fd)
    return dest


def test_ownership_devices_and_capabilities(tmp_path: Path) -> None:
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # v2: cap_net_bind_service
    tar = (
        RawTar()
        .dir("home/app", mode=0o750, uid=1000, gid=1000)
        .file("home/app/f", b"x", mode=0o4750, uid=1000, gid=100)
        .symlink("home/app/l", "f", uid=1000, gid=1000)
        .chardev("dev/null", 1, 3)
        .blockdev("dev/loop9", 7, 9)
        .file("bin/ping", b"\x7fELF", mode=0o755, xattrs={"security.capability": cap})
        .bytes()
    )
    root = unpack_raw(tmp_path, tar)
    st = os.stat(root / "home/app")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o750)
    st = os.stat(root / "home/app/f")
    # setuid survives the chown (chmod comes after it).
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 100, 0o4750)
    st = os.lstat(root / "home/app/l")
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    st = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode)) == (1, 3, 0o666)
    st = os.lstat(root / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 9)
    assert os.getxattr(root / "bin/ping", "security.capability") == cap


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    tar = (
        RawTar()
        .dir("etc")
        .file("etc/.wh.motd")
        .dir("var/cache")
        .file("var/cache/.wh..wh..opq")
        .bytes()
    )
    root = unpack_raw(tmp_path, tar)
    st = os.lstat(root / "etc/motd")
    assert stat.S_ISCHR(st.st_mode)
    assert st.st_rdev == os.makedev(0, 0)
    assert not (root / "etc/.wh.motd").exists()
    assert os.getxattr(root / "var/cache", OPAQUE_XATTR) == b"y"
    assert not (root / "var/cache/.wh..wh..opq").exists()


def test_layer_cannot_set_overlay_xattrs(tmp_path: Path) -> None:
    tar = (
        RawTar()
        .dir("d", xattrs={"trusted.overlay.redirect": b"/etc", "trusted.overlay.opaque": b"y"})
        .bytes()
    )
    root = unpack_raw(tmp_path, tar)
    assert os.listxattr(root / "d") == []


def test_device_through_symlinked_parent_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tar = RawTar().symlink("dev", str(outside)).chardev("dev/evil", 1, 1).bytes()
    with pytest.raises(InvalidLayer, match="symlink"):
        unpack_raw(tmp_path, tar)
    assert os.listdir(outside) == []


def test_whiteouts_hide_lower_files_in_mounted_overlay(imgs: Images, tmp_path: Path) -> None:
    rec = register(imgs, ob.whiteout_image(), "wh")
    container = tmp_path / "containers" / "c1"
    rootfs = imgs.mount_rootfs(rec, container)
    try:
        assert is_mountpoint(rootfs)
        assert (rootfs / "bin/busybox").is_file()
        # whiteout_image: layer 3 deletes data/gone and makes opq/ opaque.
        assert sorted(os.listdir(rootfs / "data")) == ["keep"]
        assert sorted(os.listdir(rootfs / "opq")) == ["new"]
        assert (rootfs / "etc/motd").read_text() == "v2\n"
        (rootfs / "new").write_text("upper")
        assert (container / "upper/new").read_text() == "upper"
    finally:
        imgs.unmount_rootfs(container)
    assert not is_mountpoint(rootfs)
    imgs.unmount_rootfs(container)  # idempotent


def test_whiteout_and_opaque_semantics(imgs: Images, tmp_path: Path) -> None:
    lower = ob.Layer.build(
        ob.TarBuilder()
        .dir("etc")
        .file("etc/gone", b"1")
        .file("etc/kept", b"2")
        .dir("cache")
        .file("cache/old", b"3")
    )
    upper = ob.Layer.build(
        ob.TarBuilder()
        .dir("etc")
        .whiteout("etc/gone")
        .dir("cache")
        .opaque("cache")
        .file("cache/new", b"4")
    )
    rec = register(imgs, ob.image_from_layers([lower, upper]), "wh2")
    container = tmp_path / "containers" / "c2"
    rootfs = imgs.mount_rootfs(rec, container)
    try:
        assert sorted(os.listdir(rootfs / "etc")) == ["kept"]
        assert sorted(os.listdir(rootfs / "cache")) == ["new"]
    finally:
        imgs.unmount_rootfs(container)


def test_many_layers_mount(tmp_path: Path) -> None:
    # 61 layers in a store whose root is over 100 bytes long, wherever tmp_path
    # is: the plain lowerdir= list exceeds one page.
    imgs = Images(tmp_path / ("deep-" + "r" * 100) / "root")
    try:
        layers = [
            ob.Layer.build(ob.TarBuilder().dir("l").file(f"l/{i:02}", str(i).encode()))
            for i in range(60)
        ]
        layers.append(ob.Layer.build(ob.TarBuilder().dir("l").file("l/00", b"top wins")))
        rec = register(imgs, ob.image_from_layers(layers), "many")
        container = tmp_path / "containers" / ("c" * 64)
        plain = overlay_data(imgs.lowerdirs(rec), container / "upper", container / "work")
        assert len(plain) > 4096  # so the /proc/self/fd/N naming is what gets mounted
        rootfs = imgs.mount_rootfs(rec, container)
        try:
            assert len(os.listdir(rootfs / "l")) == 60
            assert (rootfs / "l/00").read_bytes() == b"top wins"
            assert (rootfs / "l/59").read_bytes() == b"59"
        finally:
            imgs.unmount_rootfs(container)
    finally:
        imgs.close()


def test_zero_layer_image_mounts_an_empty_root(imgs: Images, tmp_path: Path) -> None:
    rec = register(imgs, ob.image_from_layers([]), "scratch")
    container = tmp_path / "containers" / "c3"
    rootfs = imgs.mount_rootfs(rec, container)
    assert imgs.mount_rootfs(rec, container) == rootfs  # idempotent: not mounted twice
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    assert sum(line.split()[4] == str(rootfs) for line in mountinfo) == 1
    try:
        assert os.listdir(rootfs) == []
        (rootfs / "x").write_text("1")
        assert os.listdir(imgs.snapshots.empty) == []
    finally:
        imgs.unmount_rootfs(container)


def test_busy_rootfs_is_detached(imgs: Images, tmp_path: Path) -> None:
    rec = register(imgs, ob.busybox_image(), "bb")
    container = tmp_path / "containers" / "c4"
    rootfs = imgs.mount_rootfs(rec, container)
    fd = os.open(rootfs / "bin", os.O_RDONLY | os.O_DIRECTORY)
    cwd = os.getcwd()
    os.chdir(rootfs / "bin")
    try:
        imgs.unmount_rootfs(container)
    finally:
        os.chdir(cwd)
        os.close(fd)
    assert not is_mountpoint(rootfs)


def test_register_remove_round_trip_leaves_no_files(imgs: Images, tmp_path: Path) -> None:
    rec = register(imgs, ob.whiteout_image(), "rt")
    container = tmp_path / "containers" / "c5"
    imgs.mount_rootfs(rec, container)
    imgs.unmount_rootfs(container)
    imgs.remove("rt")
    left = sorted(
        str(p.relative_to(imgs.root))
        for p in imgs.root.rglob("*")
        if not p.name.startswith("portique.db")
    )
    assert left == [
        "blobs",
        "blobs/sha256",
        "ingest",
        "snapshots",
        "snapshots/empty",
        "snapshots/locks",
    ]


def test_layer_from_container_upper_round_trips(imgs: Images, tmp_path: Path) -> None:
    base = register(imgs, ob.whiteout_image(), "base")
    container = tmp_path / "containers" / "c6"
    rootfs = imgs.mount_rootfs(base, container)
    try:
        (rootfs / "data/keep").unlink()  # -> whiteout char 0:0 in upper
        for child in (rootfs / "opq").iterdir():
            child.unlink()
        (rootfs / "opq").rmdir()
        (rootfs / "opq").mkdir()  # -> opaque dir in upper
        (rootfs / "opq/fresh").write_text("fresh")
        (rootfs / "etc/motd").write_text("v3\n")
        os.link(rootfs / "opq/fresh", rootfs / "opq/fresh2")
        os.symlink("/opq/fresh", rootfs / "link")
        os.chown(rootfs / "opq/fresh", 123, 456)
        expected = {
            p: (rootfs / p).read_bytes() if (rootfs / p).is_file() else None
            for p in ("data", "opq", "opq/fresh", "opq/fresh2", "etc/motd")
        }
    finally:
        imgs.unmount_rootfs(container)
    desc, diff_id = imgs.layer_from_dir(container / "upper")
    again, diff_id2 = imgs.layer_from_dir(container / "upper")
    assert (desc.digest, diff_id) == (again.digest, diff_id2)  # deterministic
    assert imgs.store.size(desc.digest) == desc.size
    # An image of base + the new layer shows what the container saw.
    config = json.loads(imgs.store.read_bytes(base.id))
    config["rootfs"]["diff_ids"].append(diff_id)
    config_bytes = json.dumps(config).encode()
    manifest = json.loads(imgs.store.read_bytes(base.manifest_digest))
    manifest["layers"].append(desc.to_json())
    manifest["config"]["digest"] = imgs.store.write_bytes(config_bytes)
    manifest["config"]["size"] = len(config_bytes)
    manifest_bytes = json.dumps(manifest).encode()
    rec = imgs.register(
        manifest_bytes, imgs.store.write_bytes(manifest_bytes), config_bytes, tags=["committed"]
    )
    c2 = tmp_path / "containers" / "c7"
    root2 = imgs.mount_rootfs(rec, c2)
    try:
        assert os.listdir(root2 / "data") == []
        assert sorted(os.listdir(root2 / "opq")) == ["fresh", "fresh2"]
        assert (root2 / "opq/fresh").read_bytes() == expected["opq/fresh"]
        assert (root2 / "etc/motd").read_text() == "v3\n"
        assert os.readlink(root2 / "link") == "/opq/fresh"
        st = os.stat(root2 / "opq/fresh")
        assert (st.st_uid, st.st_gid) == (123, 456)
        assert st.st_ino == os.stat(root2 / "opq/fresh2").st_ino
    finally:
        imgs.unmount_rootfs(c2)


def test_symlink_in_one_layer_and_file_through_it_in_the_next(imgs: Images, tmp_path: Path) -> None:
    """Each layer unpacks into its own dir, so layer 2 never sees layer 1's symlink."""
    outside = tmp_path / "host-etc"
    outside.mkdir()
    l1 = ob.Layer.from_tar(RawTar().symlink("etc", str(outside)).bytes())
    l2 = ob.Layer.from_tar(RawTar().file("etc/passwd", b"root::0:0::/:/bin/sh\n").bytes())
    rec = register(imgs, ob.image_from_layers([l1, l2]), "two-step")
    assert os.listdir(outside) == []
    container = tmp_path / "containers" / "c8"
    rootfs = imgs.mount_rootfs(rec, container)
    try:
        assert not (rootfs / "etc").is_symlink()  # the upper dir hides the lower symlink
        assert (rootfs / "etc/passwd").read_bytes().startswith(b"root")
    finally:
        imgs.unmount_rootfs(container)
    assert os.listdir(outside) == []
