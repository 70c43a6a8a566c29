"""The tar format (POSIX ustar + pax, GNU long names), read as a stream.

Our own reader rather than tarfile: it parses a header in a few microseconds
(tarfile's per-member cost was a third of an unpack), bounds what tarfile
would read into memory unchecked (pax and long-name bodies), hands file data
over as views of the decompressed blocks, and refuses sparse files.

It reads from `Blocks` (image/unpack.py feeds it from a helper thread that
decompresses) and only parses: what an entry may do to a file system is
image/unpack.py's business. A tar that is not one raises `InvalidLayer`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from portique.errors import InvalidArgument


class InvalidLayer(InvalidArgument):
    """A layer tar that is malformed or tries to escape its snapshot."""


class Blocks(Protocol):
    """The uncompressed stream, read in exact amounts (InvalidLayer when it ends early)."""

    def at_eof(self) -> bool: ...

    def read_exact(self, n: int) -> bytes: ...

    def chunks(self, n: int) -> Iterator[memoryview]: ...

    def skip(self, n: int) -> None: ...


REGTYPE: Final = b"0"
AREGTYPE: Final = b"\0"
LNKTYPE: Final = b"1"
SYMTYPE: Final = b"2"
CHRTYPE: Final = b"3"
BLKTYPE: Final = b"4"
DIRTYPE: Final = b"5"
FIFOTYPE: Final = b"6"
CONTTYPE: Final = b"7"
FILE_TYPES: Final = frozenset({REGTYPE, AREGTYPE, CONTTYPE})
_HEADER_ONLY: Final = frozenset({LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE})
_PAX_TYPES: Final = frozenset({b"x", b"X"})  # X: Solaris' name for the same
_ZERO_BLOCK: Final = bytes(512)
MAX_META: Final = 1 << 20  # bytes in one pax / GNU long-name body


@dataclass(slots=True)
class TarEntry:
    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes]  # every SCHILY.xattr.* record, unfiltered


def _bad(why: str) -> InvalidLayer:
    return InvalidLayer(f"invalid layer tar: {why}")


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256, two's complement
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    try:  # the common form: octal digits, then NULs or spaces
        return int(field.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        pass
    digits = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise _bad(f"bad number field {bytes(field)!r}") from None


def _checksum_ok(h: bytes) -> bool:
    want = _number(h[148:156])
    unsigned = sum(h) - sum(h[148:156]) + 256  # the field counts as 8 spaces
    if want == unsigned:
        return True
    # Some old tars summed signed chars.
    return want == unsigned - 256 * sum(1 for b in h if b > 127) + 256 * sum(
        1 for b in h[148:156] if b > 127
    )


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:space]) if space > pos else -1
        except ValueError:
            length = -1
        end = pos + length
        if length <= space - pos or end > len(data) or data[end - 1] != 0x0A:
            raise _bad("malformed pax record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise _bad("malformed pax record")
        out[key] = value
        pos = end
    return out


def _pax_time_ns(value: bytes) -> int:
    whole, _, frac = value.partition(b".")
    try:
        secs = int(whole)
        ns = int((frac + b"000000000")[:9]) if frac else 0
    except ValueError:
        raise _bad(f"bad pax time {value[:40]!r}") from None
    return secs * 1_000_000_000 + (-ns if whole.startswith(b"-") else ns)


class TarReader:
    """The entries of an uncompressed tar stream; read a file's data with `data()`."""

    def __init__(self, stream: Blocks) -> None:
        self._stream = stream
        self._global: dict[bytes, bytes] = {}
        self._left = 0  # data (and padding) of the current entry not yet consumed

    def data(self, entry: TarEntry) -> Iterator[memoryview]:
        for chunk in self._stream.chunks(entry.size):
            self._left -= len(chunk)
            yield chunk

    def _body(self, size: int) -> bytes:
        if size > MAX_META:
            raise _bad(f"header extension of {size} bytes is too large")
        data = self._stream.read_exact(size)
        self._stream.skip(-size % 512)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            self._stream.skip(self._left)
            self._left = 0
            if self._stream.at_eof():
                return  # no end-of-archive blocks: tolerated, as tar(1) does
            h = self._stream.read_exact(512)
            if h == _ZERO_BLOCK:
                return
            if not _checksum_ok(h):
                raise _bad("header checksum mismatch")
            typ = h[156:157]
            size = _number(h[124:136])
            if size < 0:
                raise _bad("negative size")
            if typ in _PAX_TYPES:
                pax.update(_pax_records(self._body(size)))
                continue
            if typ == b"g":
                self._global.update(_pax_records(self._body(size)))
                continue
            if typ in (b"L", b"K"):
                value = self._body(size).split(b"\0", 1)[0]
                if typ == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            rec = {**self._global, **pax} if self._global else pax
            name = rec.get(b"path") or long_name or h[0:100].split(b"\0", 1)[0]
            if h[257:263] == b"ustar\0" and h[345] and b"path" not in rec and long_name is None:
                name = h[345:500].split(b"\0", 1)[0] + b"/" + name  # POSIX prefix field
            link = rec.get(b"linkpath") or long_link or h[157:257].split(b"\0", 1)[0]
            if typ == b"S" or any(k.startswith(b"GNU.sparse.") for k in rec):
                raise InvalidLayer(
                    f"invalid layer entry {os.fsdecode(name)!r}: sparse files are not supported"
                )
            try:
                size = int(rec[b"size"]) if b"size" in rec else size
                uid = int(rec[b"uid"]) if b"uid" in rec else _number(h[108:116])
                gid = int(rec[b"gid"]) if b"gid" in rec else _number(h[116:124])
            except ValueError:
                raise _bad("bad pax number") from None
            if size < 0:
                raise _bad("negative size")
            mtime_ns = (
                _pax_time_ns(rec[b"mtime"]) if b"mtime" in rec else _number(h[136:148]) * 10**9
            )
            xattrs = {
                k[13:].decode("utf-8", "surrogateescape"): v
                for k, v in rec.items()
                if k.startswith(b"SCHILY.xattr.")
            }
            if typ == AREGTYPE and name.endswith(b"/"):
                typ = DIRTYPE  # pre-POSIX tars mark directories by a trailing slash
            if typ in _HEADER_ONLY:
                size = 0  # as Go's archive/tar: these types carry no data
            pax = {}
            long_name = long_link = None
            self._left = size + (-size % 512)
            yield TarEntry(
                name=name.decode("utf-8", "surrogateescape"),
                type=typ,
                mode=_number(h[100:108]),
                uid=uid,
                gid=gid,
                size=size,
                mtime_ns=mtime_ns,
                linkname=link.decode("utf-8", "surrogateescape"),
                devmajor=_number(h[329:337]),
                devminor=_number(h[337:345]),
                xattrs=xattrs,
            )


__all__ = [
    "AREGTYPE",
    "BLKTYPE",
    "CHRTYPE",
    "CONTTYPE",
    "DIRTYPE",
    "FIFOTYPE",
    "FILE_TYPES",
    "LNKTYPE",
    "REGTYPE",
    "SYMTYPE",
    "Blocks",
    "InvalidLayer",
    "TarEntry",
    "TarReader",
]
