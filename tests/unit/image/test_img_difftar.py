"""Overlay upper dir -> OCI layer tar (no root: plain files, links, xattrs)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from portique.image.images import Images
from portique.image.snapshots import write_diff_tar
from portique.image.unpack import unpack


def make_upper(root: Path) -> Path:
    up = root / "upper"
    (up / "b/dir").mkdir(parents=True)
    (up / "a.txt").write_text("a")
    (up / "b/dir/f").write_bytes(b"f" * 3000)
    os.chmod(up / "b/dir/f", 0o4755)
    os.link(up / "b/dir/f", up / "b/hard")
    os.symlink("../a.txt", up / "b/link")
    os.setxattr(up / "a.txt", "user.note", b"hi")
    for p in (up / "a.txt", up / "b/dir/f", up / "b/dir", up / "b", up / "b/link"):
        os.utime(p, (1_600_000_000, 1_600_000_000), follow_symlinks=False)
    return up


def test_diff_tar_entries_sorted_with_links_and_xattrs(tmp_path: Path) -> None:
    buf = io.BytesIO()
    write_diff_tar(make_upper(tmp_path), buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert list(members) == ["a.txt", "b", "b/dir", "b/dir/f", "b/hard", "b/link"]
        assert members["a.txt"].pax_headers["SCHILY.xattr.user.note"] == "hi"
        assert members["b/dir/f"].mode == 0o4755
        assert members["b/hard"].islnk()
        assert members["b/hard"].linkname == "b/dir/f"
        assert members["b/link"].linkname == "../a.txt"
        assert members["b"].mtime == 1_600_000_000
        assert members["a.txt"].uname == ""


def test_diff_tar_unpacks_to_the_same_tree_and_is_reproducible(tmp_path: Path) -> None:
    up = make_upper(tmp_path)
    imgs = Images(tmp_path / "root")
    d1, diff1 = imgs.layer_from_dir(up)
    d2, diff2 = imgs.layer_from_dir(up)
    assert (d1.digest, d1.size, diff1) == (d2.digest, d2.size, diff2)
    assert d1.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    dest = tmp_path / "out"
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with imgs.store.open(d1.digest) as f:
            result = unpack(f, fd)
    finally:
        os.close(fd)
    assert result.diff_id == diff1
    assert (dest / "b/dir/f").read_bytes() == b"f" * 3000
    assert os.stat(dest / "b/hard").st_ino == os.stat(dest / "b/dir/f").st_ino
    assert os.getxattr(dest / "a.txt", "user.note") == b"hi"
    assert os.readlink(dest / "b/link") == "../a.txt"
