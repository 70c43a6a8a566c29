"""Filling an empty volume from the image (engine/volumes.copy_image_content)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.engine.volumes import copy_image_content


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:  # a deep tree must not reach pytest's own (recursive) clean-up
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path)], check=False)


def _point(volume: Path, dest: str = "/data") -> dict[str, object]:
    return {"Type": "volume", "Source": str(volume), "Destination": dest}


def test_content_modes_links_and_nodes_are_copied(base: Path) -> None:
    rootfs = base / "rootfs"
    data = rootfs / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "file").write_text("hello\n")
    os.chmod(data / "sub" / "file", 0o640)
    os.chmod(data / "sub", 0o750)
    os.chmod(data, 0o711)
    os.symlink("/etc/passwd", data / "link")
    os.mkfifo(data / "fifo", 0o600)
    volume = base / "vol"
    volume.mkdir()
    copy_image_content(str(rootfs), [_point(volume)])
    assert (volume / "sub" / "file").read_text() == "hello\n"
    assert stat.S_IMODE(os.stat(volume / "sub" / "file").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(volume / "sub").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(volume).st_mode) == 0o711
    assert os.readlink(volume / "link") == "/etc/passwd"
    assert stat.S_ISFIFO(os.lstat(volume / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(volume / "fifo").st_mode) == 0o600


def test_a_volume_with_content_is_left_alone(base: Path) -> None:
    rootfs = base / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    (rootfs / "data" / "new").write_text("image\n")
    volume = base / "vol"
    volume.mkdir()
    (volume / "old").write_text("kept\n")
    copy_image_content(str(rootfs), [_point(volume)])
    assert sorted(os.listdir(volume)) == ["old"]


def test_symlinked_volume_path_resolves_inside_the_root(base: Path) -> None:
    rootfs = base / "rootfs"
    (rootfs / "real").mkdir(parents=True)
    (rootfs / "real" / "in-root").write_text("mine\n")
    os.symlink("/real", rootfs / "data")  # absolute: the root's /real, not the host's
    volume = base / "vol"
    volume.mkdir()
    copy_image_content(str(rootfs), [_point(volume)])
    assert sorted(os.listdir(volume)) == ["in-root"]


def test_deep_image_tree(base: Path) -> None:
    rootfs = base / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    fd = os.open(rootfs / "data", os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    volume = base / "vol"
    volume.mkdir()
    copy_image_content(str(rootfs), [_point(volume)])
    fd = os.open(volume, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):
        sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    assert os.listdir(fd) == ["bottom"]
    os.close(fd)
