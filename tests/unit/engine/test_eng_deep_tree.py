"""Trees containers write are walked and removed without recursion per level."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.engine.volumes import remove_tree, volume_size

DEPTH = 2500  # past Python's recursion limit and, as a path, past PATH_MAX


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    # pytest's clean-up of old base dirs is shutil.rmtree: a deep tree left in
    # one would break every later pytest run on this machine.
    try:
        yield tmp_path
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path)], check=False)


def _nest(top: Path, depth: int, link_to: Path) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        out = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"x" * 8192)
        os.close(out)
        os.symlink(link_to, "escape", dir_fd=fd)
    finally:
        os.close(fd)


def test_size_of_a_deep_tree(base: Path) -> None:
    top = base / "vol"
    top.mkdir()
    (top / "flat").write_bytes(b"y" * 4096)
    outside = base / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"z" * (1 << 20))
    _nest(top, DEPTH, outside)
    size = volume_size(str(top))
    assert size >= 8192 + 4096
    assert size < 1 << 20  # the symlink out of the tree was not followed


def test_remove_a_deep_tree(base: Path) -> None:
    top = base / "container"
    top.mkdir()
    outside = base / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept\n")
    _nest(top, DEPTH, outside)
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep").read_text() == "kept\n"


def test_size_of_what_is_not_there(tmp_path: Path) -> None:
    assert volume_size(str(tmp_path / "missing")) == 0
