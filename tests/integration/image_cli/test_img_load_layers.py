"""`portique load` of a docker-archive whose manifest.json Layers do not match
the config's diff_ids (issue 9, item 7): Docker refuses it; so must we, in
one line, with `docker load`'s status 1, loading nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from support.rootfs import make_busybox_rootfs


def _pq(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTIQUE_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "portique", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _rewrite(src: Path, dest: Path, name: str, content: bytes) -> None:
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for m in tin.getmembers():
            f = tin.extractfile(m)
            data = content if m.name == name else (f.read() if f else b"")
            if m.isfile():
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m)


def test_load_refuses_layers_that_do_not_match_the_config(tmp_path: Path) -> None:
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    tar_path = tmp_path / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    src_root, dest_root = tmp_path / "src", tmp_path / "dest"
    assert _pq(src_root, "import", str(tar_path), "demo/bb:v1").returncode == 0
    saved = tmp_path / "saved.tar"
    assert _pq(src_root, "save", "-o", str(saved), "demo/bb:v1").returncode == 0
    with tarfile.open(saved) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(manifest[0]["Layers"]) == 1
    for layers in ([], [manifest[0]["Layers"][0]] * 2):
        hostile = tmp_path / "hostile.tar"
        hostile_manifest = [{**manifest[0], "Layers": layers}]
        _rewrite(saved, hostile, "manifest.json", json.dumps(hostile_manifest).encode())
        r = _pq(dest_root, "load", "-i", str(hostile))
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
        assert "invalid manifest, layers length mismatch: expected 1, got" in r.stderr
        assert _pq(dest_root, "images", "-q", "-a").stdout == ""
    r = _pq(dest_root, "load", "-i", str(saved))
    assert (r.returncode, r.stdout) == (0, "Loaded image: demo/bb:v1\n"), r.stderr
