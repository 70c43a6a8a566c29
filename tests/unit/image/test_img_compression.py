"""image/compression.py: sniffing, the pull reader (layers) and the push inflater
(load, import) agree on every compression a blob may have."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma

import pytest
import zstandard

from portique.image.compression import (
    Compression,
    CorruptData,
    Inflater,
    LayerHash,
    detect,
    open_reader,
)

DATA = b"".join(b"line %d of a layer\n" % i for i in range(20_000))


def compress(kind: Compression, data: bytes) -> bytes:
    if kind is Compression.GZIP:
        return gzip.compress(data, mtime=0)
    if kind is Compression.ZSTD:
        out: bytes = zstandard.ZstdCompressor().compress(data)
        return out
    if kind is Compression.XZ:
        return lzma.compress(data)
    if kind is Compression.BZIP2:
        return bz2.compress(data)
    return data


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
        (b"\xfd7zXZ\x00", Compression.XZ),
        (b"BZh91AY", Compression.BZIP2),
        (b"ustar", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_detect(head: bytes, kind: Compression) -> None:
    assert detect(head) is kind


@pytest.mark.parametrize("kind", list(Compression))
def test_inflater_and_layer_hash(kind: Compression) -> None:
    blob = compress(kind, DATA)
    h = LayerHash()
    for i in range(0, len(blob), 4096):
        h.update(blob[i : i + 4096])
    assert h.compression is kind
    assert h.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert h.diff_id == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert h.size == len(blob)


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.NONE])
def test_open_reader_reads_concatenated_frames(kind: Compression) -> None:
    blob = compress(kind, DATA[:1000]) + compress(kind, DATA[1000:])
    reader = open_reader(io.BytesIO(blob), kind)
    out = b"".join(iter(lambda: reader.read(1 << 16), b""))
    assert out == DATA


def test_open_reader_refuses_what_no_layer_uses() -> None:
    with pytest.raises(CorruptData, match="unsupported compression xz"):
        open_reader(io.BytesIO(compress(Compression.XZ, DATA)), Compression.XZ)


def test_inflater_handles_concatenated_frames_split_across_chunks() -> None:
    z = zstandard.ZstdCompressor()
    cases = {
        Compression.GZIP: gzip.compress(b"a" * 5000, mtime=0) + gzip.compress(b"b" * 5000, mtime=0),
        Compression.ZSTD: z.compress(b"a" * 5000) + z.compress(b"b" * 5000),
    }
    for kind, data in cases.items():
        inflater = Inflater(kind)
        out = b"".join(b"".join(inflater.feed(data[i : i + 7])) for i in range(0, len(data), 7))
        assert out == b"a" * 5000 + b"b" * 5000, kind


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.XZ])
def test_inflater_reports_corruption(kind: Compression) -> None:
    magic = compress(kind, b"x")[:6]
    with pytest.raises(CorruptData, match=f"corrupt {kind} data"):
        list(Inflater(kind).feed(magic + b"\x00garbage-garbage-garbage" * 4))
