"""Several processes on one engine root: racing registers, a crash mid-unpack."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path

from portique.image.images import Images
from support import oci_build as ob
from support.imgstore_tars import Desc


def _image() -> ob.BuiltImage:
    rnd = random.Random(11)  # the same bytes in every (spawned) process
    layers = [
        ob.Layer.build(ob.TarBuilder().dir("d").file(f"d/{i}", rnd.randbytes(300_000)))
        for i in range(3)
    ]
    return ob.image_from_layers(layers, cmd=["/bin/true"])


def _register(root: str, tag: str, start: threading.Barrier) -> None:
    imgs = Images(Path(root))
    img = _image()
    for digest, data in img.blobs():
        imgs.store.write_bytes(data, digest)
    start.wait(120)  # every process has its blobs: all register at once
    imgs.register(img.manifest, img.manifest_digest, img.config, tags=[tag])


def test_processes_registering_one_image_share_everything(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_register, args=(str(tmp_path), f"app:{i}", start)) for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    imgs = Images(tmp_path)
    (rec,) = imgs.list()
    assert sorted(rec.repo_tags) == ["app:0", "app:1", "app:2"]
    # Each layer was unpacked exactly once: three snapshot dirs, no leftovers.
    assert len(imgs.db.layer_ids()) == 3
    names = sorted(os.listdir(imgs.snapshots.dir))
    assert names == sorted(["empty", "locks", *(p.name for p in rec.snapshot_dirs)])


def _unpack_slowly(root: str, digest: str, size: int) -> None:
    imgs = Images(Path(root))
    imgs.unpack_layer(Desc(digest, "application/vnd.oci.image.layer.v1.tar", size))


def _filled_staging_dirs(snapshots: Path) -> list[str]:
    names = [n for n in os.listdir(snapshots) if n.startswith("tmp-")]
    return [n for n in names if os.listdir(snapshots / n)]


def test_crash_mid_unpack_leaves_nothing_trusted(tmp_path: Path) -> None:
    rnd = random.Random(5)
    tb = ob.TarBuilder()
    for i in range(3000):
        tb.file(f"f{i:05}", rnd.randbytes(20_000))
    layer = ob.Layer.build(tb, "")  # 60 MB uncompressed: takes a while
    imgs = Images(tmp_path)
    imgs.store.write_bytes(layer.blob, layer.digest)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_unpack_slowly, args=(str(tmp_path), layer.digest, len(layer.blob)))
    proc.start()
    # Kill it once the unpack has written its first file into its staging dir.
    deadline = time.monotonic() + 120
    staging = _filled_staging_dirs(imgs.snapshots.dir)
    while not staging and time.monotonic() < deadline:
        time.sleep(0.01)
        staging = _filled_staging_dirs(imgs.snapshots.dir)
    assert staging, "the unpack never started"
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    # Nothing names the half-unpacked dir; the layer is unknown.
    assert imgs.diff_id_of(layer.digest) is None
    assert imgs.db.layer_ids() == set()
    # The next unpack (the lock died with the process) succeeds.
    path = imgs.unpack_layer(Desc(layer.digest, "x", len(layer.blob)))
    assert len(os.listdir(path)) == 3000
    # Once old enough, the crash's leftovers are swept.
    old = time.time() - 7200
    for name in staging:
        os.utime(imgs.snapshots.dir / name, (old, old))
    imgs.clean_stale()
    assert sorted(os.listdir(imgs.snapshots.dir)) == sorted(["empty", "locks", path.name])
