"""`cp CONTAINER:SRC HOST` never writes through a symlink the container left
on the host side (issue 9, item 8: what can replace a host file).

A first copy brings a container symlink `x -> /etc` (here a decoy directory)
to the host as a symlink; the container then makes `x` a directory holding
`passwd`, and a second copy into the same destination followed the host
symlink: it chmod'ed the decoy directory and overwrote its file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.engine import copy
from portique.errors import InvalidArgument


def _attack(tmp_path: Path, entry: str) -> tuple[Path, Path, Path]:
    root = tmp_path / "rootfs"
    decoy = tmp_path / "decoy"
    decoy.mkdir(mode=0o755)
    (decoy / entry).write_text("host content\n")
    (decoy / entry).chmod(0o600)
    (root / "d").mkdir(parents=True)
    (root / "d/x").symlink_to(decoy)
    dest = tmp_path / "out"
    dest.mkdir()
    copy.copy_out(str(root), "/d", str(dest))
    assert (dest / "d/x").is_symlink()
    # The container swaps its symlink for a directory with a file of that name.
    (root / "d/x").unlink()
    (root / "d/x").mkdir(mode=0o777)
    (root / "d/x" / entry).write_text("container content\n")
    (root / "d/x" / entry).chmod(0o644)
    return root, decoy, dest


def test_second_copy_does_not_follow_a_copied_symlink(tmp_path: Path) -> None:
    root, decoy, dest = _attack(tmp_path, "passwd")
    copy.copy_out(str(root), "/d", str(dest))
    assert (decoy / "passwd").read_text() == "host content\n"
    assert (decoy / "passwd").stat().st_mode & 0o777 == 0o600
    assert decoy.stat().st_mode & 0o777 == 0o755
    assert not (dest / "d/x").is_symlink()
    assert (dest / "d/x/passwd").read_text() == "container content\n"


def test_copy_of_a_symlink_over_a_copied_symlink_replaces_it(tmp_path: Path) -> None:
    root, decoy, dest = _attack(tmp_path, "null")
    (root / "d/x/null").unlink()
    (root / "d/x/null").symlink_to("/proc/self/environ")
    copy.copy_out(str(root), "/d", str(dest))
    assert (decoy / "null").read_text() == "host content\n"
    assert str((dest / "d/x/null").readlink()) == "/proc/self/environ"


def test_copy_out_top_level_name_is_not_followed(tmp_path: Path) -> None:
    """`cp ctr:/x out/` twice, x first a symlink then a directory."""
    root = tmp_path / "rootfs"
    root.mkdir()
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (root / "x").symlink_to(decoy)
    dest = tmp_path / "out"
    dest.mkdir()
    copy.copy_out(str(root), "/x", str(dest))
    (root / "x").unlink()
    (root / "x").mkdir()
    (root / "x/planted").write_text("from the container")
    copy.copy_out(str(root), "/x", str(dest))
    assert os.listdir(decoy) == []
    assert (dest / "x/planted").read_text() == "from the container"


def test_copy_out_file_over_a_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "f").write_text("f")
    dest = tmp_path / "out"
    (dest / "f").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="cannot overwrite directory f"):
        copy.copy_out(str(root), "/f", str(dest))
