"""Turn an overlayfs upper directory into an OCI layer blob.

The upper directory of a build step holds exactly what the step changed,
in overlayfs' own notation, which this module rewrites in the OCI one:

- a 0:0 character device NAME (overlay whiteout)  -> an empty `.wh.NAME`
- a directory with trusted.overlay.opaque="y"      -> the directory, plus
  `.wh..wh..opq` inside it

The tar is deterministic for the same tree (entries sorted, owner names
dropped), written as PAX, gzip-compressed, hashed on the fly (diff_id over the
plain tar, digest over the gzip stream) and put in the content store.
Overlay-private xattrs (`trusted.overlay.*`) never reach the layer.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from portique.oci.image import MEDIA_TYPE_OCI_LAYER_GZIP, Descriptor

if TYPE_CHECKING:
    from portique.image.store import ContentStore

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_KEEP_XATTRS = ("user.", "security.capability")


class _HashingWriter:
    """A write-only file that hashes and counts what passes through."""

    def __init__(self, raw: BinaryIO | gzip.GzipFile) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def layer_from_dir(store: ContentStore, upper: Path) -> tuple[Descriptor, str]:
    """Store the layer for `upper`; return its descriptor and diff_id."""
    with tempfile.TemporaryFile(dir=store.ingest_dir) as tmp:
        compressed = _HashingWriter(tmp)
        with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
            plain = _HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
                _add_tree(tf, upper)
        digest = "sha256:" + compressed.hash.hexdigest()
        diff_id = "sha256:" + plain.hash.hexdigest()
        if not store.has(digest):
            tmp.seek(0)
            with store.ingest(digest, compressed.size) as w:
                while chunk := tmp.read(1 << 20):
                    w.write(chunk)
    return Descriptor(MEDIA_TYPE_OCI_LAYER_GZIP, digest, compressed.size), diff_id


def _add_tree(tf: tarfile.TarFile, root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted([*dirnames, *filenames]):
            path = os.path.join(dirpath, name)
            arc = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                parent = os.path.dirname(arc)
                wh = tarfile.TarInfo(
                    f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else f"{WHITEOUT_PREFIX}{name}"
                )
                wh.mtime = int(st.st_mtime)
                tf.addfile(wh)
                continue
            info = tf.gettarinfo(path, arcname=arc)
            info.uname = info.gname = ""
            xattrs = _xattrs(path)
            if xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
            if info.isreg():
                with open(path, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(path):
                opq = tarfile.TarInfo(f"{arc}/{OPAQUE}")
                opq.mtime = int(st.st_mtime)
                tf.addfile(opq)
        # Symlinked directories are entries, not places to descend into.
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def _is_opaque(path: str) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if not name.startswith(_KEEP_XATTRS):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out[name] = value.decode("utf-8", "surrogateescape")
    return out
