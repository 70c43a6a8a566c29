from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.rootpath import dir_in_root, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("inside")
    (r / "abs").symlink_to("/etc")
    (r / "rel").symlink_to("../../../../etc")
    (r / "loop").symlink_to("loop")
    (r / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    return r


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "abs/passwd", "/rel/passwd", "../../etc/passwd", "/abs/../etc/passwd"]
)
def test_symlinks_resolve_inside_the_root(root: Path, path: str) -> None:
    assert resolve_in_root(str(root), path) == str(root / "etc/passwd")


def test_root_itself(root: Path) -> None:
    assert resolve_in_root(str(root), "/") == str(root)
    assert resolve_in_root(str(root), "../..") == str(root)


def test_symlink_loop_is_refused(root: Path) -> None:
    with pytest.raises(OSError, match="too many levels"):
        resolve_in_root(str(root), "/loop/x")


def test_file_as_directory_is_refused(root: Path) -> None:
    with pytest.raises(NotADirectoryError):
        resolve_in_root(str(root), "/file/x")


def test_mkdirs_creates_inside_even_through_escaping_links(root: Path) -> None:
    with dir_in_root(str(root), "/rel/new/dir", mkdirs=True) as fd:
        os.mkdir("made", dir_fd=fd)
    assert (root / "etc/new/dir/made").is_dir()
    assert not (root.parent / "outside/new").exists()
