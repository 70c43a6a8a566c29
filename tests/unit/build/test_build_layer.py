from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

from portique.build.layer import layer_from_dir
from portique.image.store import ContentStore


def _tree(root: Path) -> None:
    (root / "app/sub").mkdir(parents=True)
    (root / "app/a.txt").write_text("A")
    os.link(root / "app/a.txt", root / "app/hard")
    (root / "app/link").symlink_to("a.txt")
    os.chmod(root / "app/sub", 0o750)


def test_layer_is_stored_verified_and_deterministic(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    for name in ("one", "two"):
        _tree(tmp_path / name)
        for p in (tmp_path / name).rglob("*"):
            os.utime(p, (1000, 1000), follow_symlinks=False)
    d1, diff1 = layer_from_dir(store, tmp_path / "one")
    d2, diff2 = layer_from_dir(store, tmp_path / "two")
    assert (d1, diff1) == (d2, diff2)
    blob = store.path(d1.digest).read_bytes()
    assert d1.size == len(blob)
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == d1.digest
    plain = gzip.decompress(blob)
    assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff1
    with tarfile.open(fileobj=io.BytesIO(plain)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert list(members) == ["app", "app/a.txt", "app/hard", "app/link", "app/sub"]
    assert members["app/hard"].islnk()
    assert members["app/hard"].linkname == "app/a.txt"
    assert members["app/link"].issym()
    assert members["app/link"].linkname == "a.txt"
    assert members["app/sub"].mode == 0o750
    assert members["app/a.txt"].uname == ""
