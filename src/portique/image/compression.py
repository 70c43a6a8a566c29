"""Compressed streams: what a blob is compressed with, and its uncompressed bytes.

The one place that knows the magic bytes (never the media type alone: it may
lie) and the decoders: gzip through ISA-L (`isal`, several times faster than
zlib; zlib if it is missing), zstd through `zstandard` (several frames in a
row, as `zstd` writes them, are one stream), xz and bzip2 from the standard
library. Two ways to read:

- `open_reader(src, kind)`: pull, a file-like reader of the uncompressed
  bytes (layer unpacking, image/unpack.py);
- `Inflater(kind).feed(chunk)`: push, for data that arrives in chunks and is
  also kept as it is (`load`, `import`); `LayerHash` adds the two digests a
  layer has, of the blob and of its uncompressed tar (the diff_id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, BinaryIO, Final, Protocol

from portique.errors import InvalidArgument

GZIP_MAGIC: Final = b"\x1f\x8b"
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
XZ_MAGIC: Final = b"\xfd7zXZ\x00"
BZIP2_MAGIC: Final = b"BZh"
READ_SIZE: Final = 1 << 20  # what a zstd reader asks of its source at a time
MAX_FRAMES: Final = 1 << 16  # concatenated frames one chunk may end, a bound


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    XZ = "xz"
    BZIP2 = "bzip2"
    NONE = "none"


class CorruptData(InvalidArgument):
    """Compressed data that its decoder refuses."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def detect(head: bytes) -> Compression:
    """The compression of a stream from its first bytes (NONE: anything else)."""
    for magic, kind in (
        (GZIP_MAGIC, Compression.GZIP),
        (ZSTD_MAGIC, Compression.ZSTD),
        (XZ_MAGIC, Compression.XZ),
        (BZIP2_MAGIC, Compression.BZIP2),
    ):
        if head.startswith(magic):
            return kind
    return Compression.NONE


def open_reader(src: BinaryIO, kind: Compression) -> Readable:
    """A reader of the uncompressed bytes of `src` (positioned at its start);
    gzip, zstd or none: what a layer may be."""
    if kind is Compression.GZIP:
        try:
            from isal import igzip

            return igzip.GzipFile(fileobj=src, mode="rb")  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover - isal is a dependency
            import gzip

            return gzip.GzipFile(fileobj=src, mode="rb")
    if kind is Compression.ZSTD:
        import zstandard

        reader: Readable = zstandard.ZstdDecompressor().stream_reader(
            src, read_size=READ_SIZE, read_across_frames=True, closefd=False
        )
        return reader
    if kind is Compression.NONE:
        return src
    raise CorruptData(f"unsupported compression {kind}")


def _decompressobj(kind: Compression) -> Any:
    if kind is Compression.GZIP:
        try:
            from isal import isal_zlib

            return isal_zlib.decompressobj(wbits=16 + isal_zlib.MAX_WBITS)
        except ImportError:  # pragma: no cover - isal is a dependency
            import zlib

            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if kind is Compression.ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    if kind is Compression.XZ:
        import lzma

        return lzma.LZMADecompressor()
    if kind is Compression.BZIP2:
        import bz2

        return bz2.BZ2Decompressor()
    raise CorruptData(f"unsupported compression {kind}")


class Inflater:
    """Incremental decompression that copes with concatenated gzip/zstd frames."""

    def __init__(self, kind: Compression) -> None:
        self.kind = kind
        self._obj: Any = _decompressobj(kind)

    def feed(self, data: bytes) -> Iterator[bytes]:
        for _ in range(MAX_FRAMES):  # bounded: one round per concatenated frame
            try:
                out = self._obj.decompress(data)
            except Exception as exc:  # zlib.error, IsalError, ZstdError, LZMAError, OSError
                raise CorruptData(f"corrupt {self.kind} data: {exc}") from None
            if out:
                yield out
            if not getattr(self._obj, "eof", False):
                return
            data = self._obj.unused_data
            self._obj = _decompressobj(self.kind)
            if not data:
                return


class LayerHash:
    """Digest of a blob as given, and of its uncompressed tar (the diff_id)."""

    def __init__(self) -> None:
        self.raw = hashlib.sha256()
        self.diff: Any = None
        self.size = 0
        self.compression: Compression | None = None  # known from the first chunk
        self._inflater: Inflater | None = None

    def update(self, data: bytes) -> None:
        if self.compression is None:
            self.compression = detect(data)
            if self.compression is not Compression.NONE:
                self.diff = hashlib.sha256()
                self._inflater = Inflater(self.compression)
        self.raw.update(data)
        self.size += len(data)
        if self._inflater is not None:
            for out in self._inflater.feed(data):
                self.diff.update(out)

    @property
    def digest(self) -> str:
        return "sha256:" + self.raw.hexdigest()

    @property
    def diff_id(self) -> str:
        return "sha256:" + (self.diff or self.raw).hexdigest()


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class GzipSink:
    """Hash (the diff_id) and gzip what the tar writer produces, into `out`."""

    def __init__(self, out: _Writable) -> None:
        try:
            from isal import isal_zlib as zlib_mod
        except ImportError:  # pragma: no cover - isal is a dependency
            import zlib as zlib_mod  # type: ignore[no-redef]
        self._out = out
        # wbits 31: a gzip member with mtime 0 and no file name (reproducible).
        self._z = zlib_mod.compressobj(3, zlib_mod.DEFLATED, 31)
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        chunk = self._z.compress(data)
        if chunk:
            self._out.write(chunk)
        return len(data)

    def close(self) -> None:
        self._out.write(self._z.flush())

    @property
    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()


__all__ = [
    "Compression",
    "CorruptData",
    "GzipSink",
    "Inflater",
    "LayerHash",
    "Readable",
    "detect",
    "open_reader",
]
