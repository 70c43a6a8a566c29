"""What dead fetches, unpacks and layer writers leave is swept by lock, not by age."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import random
import time
from pathlib import Path

import pytest

from portique.image.images import Images
from portique.image.store import MAX_KEPT_PARTIALS, ContentStore

DATA = random.Random(8).randbytes(1 << 20)
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def digest_of(i: int) -> tuple[bytes, str]:
    data = f"blob {i}".encode() * 1000
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def partial(store: ContentStore, i: int, mtime: float) -> Path:
    """An interrupted download of blob `i` (its first 100 bytes), last written at `mtime`."""
    data, digest = digest_of(i)
    cut(store, digest, len(data), data[:100])
    path = store.ingest_dir / f"{digest.replace(':', '-')}.part"
    os.utime(path, (mtime, mtime))
    return path


def cut(store: ContentStore, digest: str, size: int, data: bytes, *, lock: bool = False) -> int:
    """A download of `digest` that receives `data` and is cut; the offset it resumed at."""
    offset = -1

    def download() -> None:
        nonlocal offset
        with contextlib.ExitStack() as stack:
            if lock:
                stack.enter_context(store.lock(digest))
            w = stack.enter_context(store.ingest(digest, size))
            offset = w.offset
            w.write(data)
            raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        download()
    return offset


def in_child(target: object, *args: object) -> None:
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=target, args=args)  # type: ignore[arg-type]
    p.start()
    p.join(60)
    assert p.exitcode == 0


def _die_holding_the_fetch_lock(root: str) -> None:
    store = ContentStore(Path(root))
    with store.lock(DIGEST), store.ingest(DIGEST, len(DATA)) as w:
        w.write(DATA[:1000])
        os._exit(0)  # killed mid-download: both locks die, both files stay


def _die_mid_new_blob(root: str) -> None:
    store = ContentStore(Path(root))
    with store.new_blob() as blob:
        blob.write(DATA)
        os._exit(0)


def test_a_failed_fetch_leaves_its_partial_but_no_lock_file(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    cut(store, DIGEST, len(DATA), DATA[:1000], lock=True)
    assert sorted(os.listdir(store.ingest_dir)) == [f"{DIGEST.replace(':', '-')}.part"]
    with store.lock(DIGEST), store.ingest(DIGEST, len(DATA)) as w:
        assert w.offset == 1000  # resumed
        w.write(DATA[1000:])
    assert os.listdir(store.ingest_dir) == []


def test_a_killed_fetch_is_swept_at_once_its_partial_kept(tmp_path: Path) -> None:
    in_child(_die_holding_the_fetch_lock, str(tmp_path))
    store = ContentStore(tmp_path)
    flat = DIGEST.replace(":", "-")
    assert sorted(os.listdir(store.ingest_dir)) == [f"{flat}.lock", f"{flat}.part"]
    assert store.sweep() == 1
    assert os.listdir(store.ingest_dir) == [f"{flat}.part"]  # fresh: kept for a resume
    assert cut(store, DIGEST, len(DATA), b"", lock=True) == 1000  # resumable
    # system prune: no abandoned partial is kept.
    assert store.sweep(keep_partials=False) == 1
    assert os.listdir(store.ingest_dir) == []


def test_files_in_use_are_never_swept(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data, digest = digest_of(1)
    with store.lock(digest), store.ingest(digest, len(data)) as w:
        w.write(data[:10])
        assert store.sweep(keep_partials=False) == 0
        assert len(os.listdir(store.ingest_dir)) == 2
        w.write(data[10:])
    # A partial whose digest's fetch lock is held is about to be resumed: kept.
    old = time.time() - 7 * 24 * 3600
    part = partial(store, 2, old)
    with store.lock(digest_of(2)[1]):
        assert store.sweep(keep_partials=False) == 0
        assert part.exists()
    assert store.sweep(keep_partials=False) == 1


def test_kept_partials_are_bounded_in_number_and_age(tmp_path: Path) -> None:
    """A registry that breaks every download cannot make partials pile up."""
    store = ContentStore(tmp_path)
    now = time.time()
    paths = [partial(store, i, now - 100 + i) for i in range(MAX_KEPT_PARTIALS + 4)]
    stale = partial(store, 99, now - 2 * 24 * 3600)
    assert store.sweep() == 5
    kept = sorted(p.name for p in store.ingest_dir.iterdir())
    assert kept == sorted(p.name for p in paths[4:])  # the newest ones
    assert not stale.exists()


def test_a_killed_layer_writer_leaves_nothing(tmp_path: Path) -> None:
    in_child(_die_mid_new_blob, str(tmp_path))
    store = ContentStore(tmp_path)
    assert os.listdir(store.ingest_dir) == []
    assert list(store.digests()) == []
    with store.new_blob() as blob:
        blob.write(DATA)
    assert blob.digest == DIGEST
    with store.new_blob() as again:  # the same content once more: already stored
        again.write(DATA)
    assert list(store.digests()) == [DIGEST]
    assert os.listdir(store.ingest_dir) == []


def _die_mid_unpack(root: str, key: str) -> None:
    imgs = Images(Path(root))
    with imgs.snapshots.lock(key), imgs.snapshots.staging(key) as (tmp, _fd):
        (tmp / "half").write_bytes(b"x")
        os._exit(0)


def test_dead_unpacks_and_unnamed_snapshots_are_swept_at_once(tmp_path: Path) -> None:
    in_child(_die_mid_unpack, str(tmp_path), DIGEST)
    imgs = Images(tmp_path)
    snaps = imgs.snapshots
    staged = [n for n in os.listdir(snaps.dir) if n.startswith("tmp-")]
    assert len(staged) == 1
    assert os.listdir(snaps.locks) != []
    # A numbered dir no layer row names: a crash between the rename and the commit.
    (snaps.dir / "7").mkdir()
    # A live unpack of another blob is left alone.
    with snaps.lock("sha256:live"), snaps.staging("sha256:live") as (live, _fd):
        imgs.sweep_abandoned()
        assert live.exists()
        assert sorted(os.listdir(snaps.dir)) == sorted(["empty", "locks", live.name])
    assert os.listdir(snaps.locks) == []
    imgs.close()
