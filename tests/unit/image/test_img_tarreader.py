"""portique's tar reader against Python's tarfile on the same archives."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.image.tarreader import InvalidLayer, TarReader
from portique.image.unpack import _Prefetch, unpack
from support.imgstore_tars import tree

LONG = "very/" * 30 + "long-name-" + "x" * 80  # > 100 bytes: prefix, pax or GNU L


def archive(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]], **kw: object) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **kw) as tf:  # type: ignore[call-overload]
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **kw: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mtime = 1_700_000_000
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def ours(data: bytes) -> list[tuple[object, ...]]:
    stream = _Prefetch(io.BytesIO(data))
    try:
        reader = TarReader(stream)
        out: list[tuple[object, ...]] = []
        for e in reader:
            body = (
                b"".join(bytes(c) for c in reader.data(e)) if e.type in (b"0", b"\0", b"7") else b""
            )
            out.append(
                (
                    e.name,
                    e.type,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.size,
                    e.linkname,
                    e.devmajor,
                    e.devminor,
                    body,
                )
            )
        return out
    finally:
        stream.close()


def theirs(data: bytes) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as tf:
        for m in tf.getmembers():
            body = tf.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            kind = m.type if m.type != tarfile.AREGTYPE or m.isdir() else tarfile.REGTYPE
            if m.isdir():
                kind = tarfile.DIRTYPE
            out.append(
                (
                    m.name,
                    kind,
                    m.mode,
                    m.uid,
                    m.gid,
                    m.size if m.isreg() else 0,
                    m.linkname,
                    m.devmajor,
                    m.devminor,
                    body,
                )
            )
    return out


def rechecksum(data: bytes) -> bytes:
    """Fix the first header's checksum after a test changed one of its fields."""
    h = bytearray(data[:512])
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + data[512:]


def read_all(stream: _Prefetch) -> None:
    reader = TarReader(stream)
    for e in reader:
        for _ in reader.data(e):
            pass


def normalise(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    # tarfile strips trailing slashes from names and maps '\0' to '0'.
    return [(str(r[0]).rstrip("/"), b"0" if r[1] == b"\0" else r[1], *r[2:]) for r in rows]


MEMBERS = [
    (info("etc", tarfile.DIRTYPE, mode=0o755), b""),
    (info("etc/hosts", size=5, mode=0o644, uid=1, gid=2), b"hosts"),
    (info(LONG, size=3, mode=0o600), b"abc"),
    (info("link", tarfile.SYMTYPE, linkname=LONG), b""),
    (info("hard", tarfile.LNKTYPE, linkname="etc/hosts"), b""),
    (info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), b""),
    (info("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), b""),
    (info("fifo", tarfile.FIFOTYPE), b""),
    (info("empty", size=0), b""),
    (info("block-sized", size=512), b"b" * 512),
    (info("unicode-é-日本", size=2), b"ok"),
]


@pytest.mark.parametrize(
    "fmt",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
def test_same_entries_as_tarfile(fmt: int) -> None:
    members = MEMBERS
    if fmt == tarfile.USTAR_FORMAT:  # ustar cannot hold a 100+ byte link target
        members = [m for m in MEMBERS if m[0].name != "link"]
    data = archive(fmt, members)
    assert normalise(ours(data)) == normalise(theirs(data))


def test_big_ids_and_fractional_mtime() -> None:
    gnu = archive(tarfile.GNU_FORMAT, [(info("big", uid=3_000_000_000, gid=2**40), b"")])
    assert ours(gnu)[0][3:5] == (3_000_000_000, 2**40)  # base-256 fields
    pax = archive(tarfile.PAX_FORMAT, [(info("t", mtime=1_700_000_000.25, uid=2**33), b"")])
    stream = _Prefetch(io.BytesIO(pax))
    (entry,) = list(TarReader(stream))
    stream.close()
    assert entry.mtime_ns == 1_700_000_000_250_000_000
    assert entry.uid == 2**33


def test_pax_global_header_and_xattrs() -> None:
    ti = info("f", size=1)
    ti.pax_headers = {"SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.capability": "\x01\x02"}
    data = archive(tarfile.PAX_FORMAT, [(ti, b"x")], pax_headers={"comment": "made by git"})
    stream = _Prefetch(io.BytesIO(data))
    (entry,) = list(TarReader(stream))
    stream.close()
    assert entry.xattrs == {"user.a": b"1", "security.capability": b"\x01\x02"}


def test_directory_marked_by_a_trailing_slash() -> None:
    raw = bytearray(archive(tarfile.USTAR_FORMAT, [(info("olddir/", tarfile.REGTYPE), b"")]))
    raw[156] = 0  # AREGTYPE, as pre-POSIX tars wrote it
    stream = _Prefetch(io.BytesIO(rechecksum(bytes(raw))))
    (entry,) = list(TarReader(stream))
    stream.close()
    assert entry.type == b"5"


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b[:100] + b"X" + b[101:], "checksum"),
        (lambda b: rechecksum(b[:124] + b"9999999999z\0" + b[136:]), "number"),
        (lambda b: b[:700], "end of data"),
    ],
    ids=["checksum", "size-field", "truncated"],
)
def test_malformed_headers(mutate: Callable[[bytes], bytes], why: str) -> None:
    data = archive(tarfile.USTAR_FORMAT, [(info("f", size=600), b"z" * 600)])
    stream = _Prefetch(io.BytesIO(mutate(data)))
    try:
        with pytest.raises(InvalidLayer, match=why):
            read_all(stream)
    finally:
        stream.close()


def test_malformed_pax_record() -> None:
    ti = info("f")
    ti.pax_headers = {"comment": "x"}
    data = bytearray(archive(tarfile.PAX_FORMAT, [(ti, b"")]))
    body = data.find(b"comment=x")
    data[body - 3 : body - 1] = b"99"  # the record claims more bytes than exist
    stream = _Prefetch(io.BytesIO(bytes(data)))
    try:
        with pytest.raises(InvalidLayer, match="pax"):
            list(TarReader(stream))
    finally:
        stream.close()


@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar", "v7"])
def test_gnu_tar_archives_unpack_to_the_source_tree(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    deep = src / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("f" * 90)).write_bytes(b"long")
    (src / "exec").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "exec", 0o751)
    os.symlink("exec", src / "sym")
    os.link(src / "exec", src / "hard")
    (src / "empty").mkdir()
    if fmt == "v7":  # v7 has no room for long names
        shutil.rmtree(src / ("d" * 60))
    tarball = tmp_path / "layer.tar"
    subprocess.run(["tar", f"--format={fmt}", "-cf", str(tarball), "-C", str(src), "."], check=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(tarball, "rb") as f:
            result = unpack(f, fd)
    finally:
        os.close(fd)
    assert result.diff_id == "sha256:" + hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert tree(dest) == tree(src)
    assert stat.S_IMODE(os.stat(dest / "exec").st_mode) == 0o751
    assert os.stat(dest / "hard").st_ino == os.stat(dest / "exec").st_ino


def test_negative_pax_size_is_refused() -> None:
    ti = info("f")
    ti.pax_headers = {"size": "-5"}
    stream = _Prefetch(io.BytesIO(archive(tarfile.PAX_FORMAT, [(ti, b"")])))
    try:
        with pytest.raises(InvalidLayer, match="negative size"):
            read_all(stream)
    finally:
        stream.close()
