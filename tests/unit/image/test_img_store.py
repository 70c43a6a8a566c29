"""The content store: verified ingest, resume, locking, concurrent fetches."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import threading
import time
from pathlib import Path

import pytest

from portique.errors import NotFound
from portique.image.store import ContentStore
from portique.oci.digest import DigestMismatch

# Deterministic: spawned processes re-import this module and must agree.
DATA = random.Random(7).randbytes(3 << 20)
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def interrupted(store: ContentStore, data: bytes, exc: BaseException) -> None:
    """An ingest that receives `data`, then dies of `exc` (a dropped connection, ^C)."""

    def die() -> None:
        with store.ingest(DIGEST, len(DATA)) as w:
            w.write(data)
            raise exc

    with pytest.raises(type(exc)):
        die()


def files_under(p: Path) -> list[str]:
    return sorted(str(x.relative_to(p)) for x in p.rglob("*") if x.is_file())


def test_ingest_verifies_and_renames(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    assert not store.has(DIGEST)
    with store.ingest(DIGEST, len(DATA)) as w:
        assert w.offset == 0
        for i in range(0, len(DATA), 100_000):
            w.write(DATA[i : i + 100_000])
    assert store.has(DIGEST)
    assert store.size(DIGEST) == len(DATA)
    with store.open(DIGEST) as f:
        assert f.read() == DATA
    assert store.path(DIGEST) == tmp_path / "blobs/sha256" / DIGEST[7:]
    assert os.listdir(store.ingest_dir) == []


def test_digest_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(DigestMismatch, match="hashes to"), store.ingest(DIGEST, len(DATA)) as w:
        w.write(DATA[:-1] + b"\0")
    assert not store.has(DIGEST)
    assert files_under(tmp_path) == []


def test_size_mismatch_short_and_long(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(DigestMismatch, match="expected"), store.ingest(DIGEST, len(DATA)) as w:
        w.write(DATA[:1000])
    with pytest.raises(DigestMismatch, match="larger"), store.ingest(DIGEST, 10) as w:
        w.write(DATA[:11])
    # Right bytes, wrong announced size: still refused.
    with pytest.raises(DigestMismatch), store.ingest(DIGEST, len(DATA) + 1) as w:
        w.write(DATA)
    assert not store.has(DIGEST)
    assert files_under(tmp_path) == []


def test_interrupted_ingest_resumes_from_offset(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    interrupted(store, DATA[:1_234_567], ConnectionError("network went away"))
    assert not store.has(DIGEST)  # nothing trusted yet
    with store.ingest(DIGEST, len(DATA)) as w:
        assert w.offset == 1_234_567
        w.write(DATA[w.offset :])
    with store.open(DIGEST) as f:
        assert f.read() == DATA


def test_resume_with_corrupt_prefix_is_caught(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    interrupted(store, b"X" * 1000, ConnectionError())  # wrong bytes from a bad mirror
    with pytest.raises(DigestMismatch), store.ingest(DIGEST, len(DATA)) as w:
        w.write(DATA[w.offset :])
    assert not store.has(DIGEST)
    # After the mismatch the partial is gone: a third try starts from zero.
    with store.ingest(DIGEST, len(DATA)) as w:
        assert w.offset == 0
        w.write(DATA)
    assert store.has(DIGEST)


def test_restart_drops_prefix(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    interrupted(store, DATA[:500], KeyboardInterrupt())
    with store.ingest(DIGEST, len(DATA)) as w:
        assert w.offset == 500
        w.restart()  # the server ignored our Range request
        assert w.offset == 0
        w.write(DATA)
    assert store.has(DIGEST)


def test_hostile_digests_never_become_paths(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, "x"):
        with pytest.raises(Exception, match="invalid digest"):
            store.path(bad)


def test_write_bytes_and_delete(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    d = store.write_bytes(b'{"a":1}')
    assert d == "sha256:" + hashlib.sha256(b'{"a":1}').hexdigest()
    assert store.write_bytes(b'{"a":1}', d) == d
    assert store.read_bytes(d) == b'{"a":1}'
    with pytest.raises(DigestMismatch):
        store.write_bytes(b"other", "sha256:" + "0" * 64)
    with pytest.raises(DigestMismatch, match="larger"):
        store.read_bytes(d, limit=3)
    assert list(store.digests()) == [d]
    store.delete(d)
    store.delete(d)  # idempotent
    assert not store.has(d)
    with pytest.raises(NotFound, match="no such blob"):
        store.open(d)
    assert files_under(tmp_path) == []


def test_clean_stale_partials(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    interrupted(store, DATA[:10], OSError("cut"))
    assert store.clean_stale() == 0  # fresh: kept for resume
    part = next(store.ingest_dir.glob("*.part"))
    old = time.time() - 2 * 24 * 3600
    os.utime(part, (old, old))
    assert store.clean_stale() == 1
    assert files_under(tmp_path) == []


def _fetch(root: str, counter_path: str, start: threading.Barrier) -> None:
    """One 'pull' of DATA: lock, check, download (recorded), ingest."""
    store = ContentStore(Path(root))
    start.wait(60)  # all fetchers race from here
    with store.lock(DIGEST):
        if store.has(DIGEST):
            return
        with open(counter_path, "a") as f:
            f.write(f"{os.getpid()}\n")
        with store.ingest(DIGEST, len(DATA)) as w:
            for i in range(0, len(DATA), 65536):
                w.write(DATA[i : i + 65536])
                time.sleep(0.0005)


def test_concurrent_fetch_of_one_digest_from_processes(tmp_path: Path) -> None:
    counter = tmp_path / "fetches"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_fetch, args=(str(tmp_path / "root"), str(counter), start))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(counter.read_text().split()) == 1  # fetched once
    store = ContentStore(tmp_path / "root")
    with store.open(DIGEST) as f:
        assert f.read() == DATA
    assert os.listdir(store.ingest_dir) == []  # lock files go with the fetch


def test_concurrent_fetch_from_threads(tmp_path: Path) -> None:
    counter = tmp_path / "fetches"
    start = threading.Barrier(4)
    threads = [
        threading.Thread(target=_fetch, args=(str(tmp_path), str(counter), start)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(counter.read_text().split()) == 1
    assert ContentStore(tmp_path).has(DIGEST)


def test_two_writers_of_one_partial_do_not_interleave(tmp_path: Path) -> None:
    """Without the caller's lock, the partial's own lock still serialises writers."""
    store = ContentStore(tmp_path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with store.ingest(DIGEST, len(DATA)) as w:
                if w.offset:
                    w.restart()
                w.write(DATA)
        except BaseException as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with store.open(DIGEST) as f:
        assert f.read() == DATA
