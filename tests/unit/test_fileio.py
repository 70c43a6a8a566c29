"""portique/fileio.py, the one atomic write: all or nothing, fsync as the caller says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.fileio import atomic_file, atomic_write, atomic_write_json


def test_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write_json(target, {"a": [1, 2]}, 0o600, fsync=False)
    assert target.read_bytes() == b'{"a":[1,2]}'
    assert os.listdir(tmp_path) == ["state.json"]
    assert target.stat().st_mode & 0o777 == 0o600 & ~_umask()


def test_a_stream_is_flushed_before_the_rename(tmp_path: Path) -> None:
    target = tmp_path / "archive.tar"
    data = bytes(range(256)) * 4096  # more than the file object's buffer
    with atomic_file(target, 0o666, fsync=True) as f:
        for i in range(0, len(data), 1000):
            f.write(data[i : i + 1000])
        assert not target.exists()
    assert target.read_bytes() == data
    assert os.listdir(tmp_path) == ["archive.tar"]


def test_a_failure_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "archive.tar"
    target.write_bytes(b"old")

    def write_half() -> None:
        with atomic_file(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError, match="the writer failed"):
        write_half()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["archive.tar"]


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_is_the_callers_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    synced: list[int] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    atomic_write(tmp_path / "f", b"data", fsync=fsync)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert len(synced) == (1 if fsync else 0)


def test_a_symlink_at_the_temp_name_is_not_followed(tmp_path: Path) -> None:
    # Someone who can write the directory plants the temp name as a link to
    # another file: the write must fail rather than truncate that file and
    # rename the link into place.
    outside = tmp_path / "outside"
    outside.write_text("precious")
    d = tmp_path / "dir"
    d.mkdir()
    os.symlink(outside, d / f".hosts.tmp.{os.getpid()}")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        atomic_write(d / "hosts", b"127.0.0.1 localhost\n", fsync=False)
    assert outside.read_text() == "precious"
    assert not (d / "hosts").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
