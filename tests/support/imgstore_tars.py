"""Raw layer tars for the image-store tests, including hostile ones.

Unlike oci_build.TarBuilder (well-formed layers), `RawTar` writes whatever
header it is told: absolute names, `..`, links pointing anywhere.

    tar = RawTar().dir("etc").file("etc/x", b"hi", mode=0o4755).symlink("l", "/etc").bytes()
    blob = compress(tar, "gzip"); desc = Desc.of(blob)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

MTIME = 1_600_000_000


class RawTar:
    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._done: bytes | None = None

    def add(
        self,
        name: str,
        kind: bytes,
        *,
        data: bytes = b"",
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: float = MTIME,
        linkname: str = "",
        xattrs: dict[str, bytes] | None = None,
        devmajor: int = 0,
        devminor: int = 0,
    ) -> RawTar:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        ti.linkname = linkname
        ti.devmajor, ti.devminor = devmajor, devminor
        if xattrs:
            ti.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
        if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
            ti.size = len(data)
            self._tar.addfile(ti, io.BytesIO(data))
        else:
            self._tar.addfile(ti)
        return self

    def dir(self, name: str, mode: int = 0o755, **kw: object) -> RawTar:
        return self.add(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> RawTar:
        return self.add(name, tarfile.REGTYPE, data=data, mode=mode, **kw)  # type: ignore[arg-type]

    def symlink(self, name: str, target: str, **kw: object) -> RawTar:
        return self.add(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw)  # type: ignore[arg-type]

    def hardlink(self, name: str, target: str) -> RawTar:
        return self.add(name, tarfile.LNKTYPE, linkname=target)

    def fifo(self, name: str, mode: int = 0o640) -> RawTar:
        return self.add(name, tarfile.FIFOTYPE, mode=mode)

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o666) -> RawTar:
        return self.add(name, tarfile.CHRTYPE, mode=mode, devmajor=major, devminor=minor)

    def blockdev(self, name: str, major: int, minor: int, mode: int = 0o660) -> RawTar:
        return self.add(name, tarfile.BLKTYPE, mode=mode, devmajor=major, devminor=minor)

    def bytes(self) -> bytes:
        if self._done is None:
            self._tar.close()
            self._done = self._buf.getvalue()
        return self._done


def compress(tar: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(tar, compresslevel=1, mtime=0)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(tar)
    return tar


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Desc:
    """A layer descriptor (what Images.unpack_layer reads: digest, media_type, size)."""

    digest: str
    media_type: str
    size: int

    @classmethod
    def of(
        cls, blob: bytes, media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip"
    ) -> Desc:
        return cls(sha256(blob), media_type, len(blob))


def tree(root: Path) -> dict[str, str]:
    """A comparable listing of `root`: relative path -> kind (and link target/content)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "symlink:" + str(p.readlink())
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = "file:" + p.read_bytes()[:40].decode(errors="replace")
        else:
            out[rel] = "other"
    return out
