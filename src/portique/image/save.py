"""`save`: images to one tar, as a docker-archive or an OCI archive (image/archive.py).

The tar is written as a stream (it may go to a pipe): every blob once, then
the OCI layout's oci-layout and index.json, and for a docker-archive
manifest.json and repositories, which name the same blobs.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from portique.errors import InvalidArgument
from portique.image.archive import (
    CONTAINERD_NAME,
    OCI_LAYOUT,
    REF_NAME,
    ArchiveFormat,
    InvalidArchive,
    blob_name,
)
from portique.oci import image as oci
from portique.oci.reference import parse_reference

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images
    from portique.image.store import ContentStore


@dataclass(frozen=True, slots=True)
class _SavedImage:
    record: ImageRecord
    manifest_digest: str
    manifest_bytes: bytes
    manifest: oci.Manifest
    tags: tuple[str, ...]  # familiar names: busybox:latest


def save(
    images: Images,
    refs: Sequence[str],
    out: BinaryIO,
    *,
    format: ArchiveFormat | str = ArchiveFormat.DOCKER,
) -> None:
    """Write the images `refs` name to `out` as one tar in `format`."""
    fmt = ArchiveFormat(format)
    chosen: dict[str, _SavedImage] = {}
    for name in refs:
        record = images.resolve(name)
        tags = _tags_for(name, record)
        prev = chosen.get(record.id)
        if prev is not None:
            tags = tuple(dict.fromkeys(prev.tags + tags))
        manifest_bytes = images.store.read_bytes(record.manifest_digest, oci.MAX_MANIFEST_SIZE)
        manifest = oci.parse_manifest(manifest_bytes)
        if not isinstance(manifest, oci.Manifest):
            raise InvalidArchive(f"image {name}: its manifest is not an image manifest")
        chosen[record.id] = _SavedImage(
            record, record.manifest_digest, manifest_bytes, manifest, tags
        )
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        written: set[str] = set()
        tar.addfile(_dir_info("blobs"))
        tar.addfile(_dir_info("blobs/sha256"))
        for img in chosen.values():
            for desc in (img.manifest.config, *img.manifest.layers):
                _add_blob(tar, images.store, desc.digest, written)
            _add_bytes(tar, blob_name(img.manifest_digest), img.manifest_bytes, written)
        _add_bytes(tar, "oci-layout", OCI_LAYOUT, written)
        _add_bytes(tar, "index.json", _index_json(chosen.values()), written)
        if fmt is ArchiveFormat.DOCKER:
            _add_bytes(tar, "manifest.json", _manifest_json(chosen.values()), written)
            _add_bytes(tar, "repositories", _repositories(chosen.values()), written)


def _tags_for(name: str, record: ImageRecord) -> tuple[str, ...]:
    """The tags to save: the one named, or all of the image's when named by id."""
    try:
        ref = parse_reference(name)
    except InvalidArgument:
        ref = None
    if ref is not None and ref.digest is None:
        tagged = ref.familiar()
        repo_tags = [parse_reference(t).familiar() for t in record.repo_tags]
        if tagged in repo_tags:
            return (tagged,)
    return tuple(parse_reference(t).familiar() for t in record.repo_tags)


def _index_json(saved: Iterable[_SavedImage]) -> bytes:
    manifests = []
    for img in saved:
        base = {
            "mediaType": img.manifest.media_type,
            "digest": img.manifest_digest,
            "size": len(img.manifest_bytes),
        }
        if not img.tags:
            manifests.append(base)
        for tag in img.tags:
            ref = parse_reference(tag)
            manifests.append(
                {**base, "annotations": {CONTAINERD_NAME: str(ref), REF_NAME: ref.tag or "latest"}}
            )
    doc = {"schemaVersion": 2, "mediaType": oci.MEDIA_TYPE_OCI_INDEX, "manifests": manifests}
    return json.dumps(doc, separators=(",", ":")).encode()


def _manifest_json(saved: Iterable[_SavedImage]) -> bytes:
    doc = [
        {
            "Config": blob_name(img.manifest.config.digest),
            "RepoTags": list(img.tags) or None,
            "Layers": [blob_name(d.digest) for d in img.manifest.layers],
        }
        for img in saved
    ]
    return json.dumps(doc, separators=(",", ":")).encode()


def _repositories(saved: Iterable[_SavedImage]) -> bytes:
    repos: dict[str, dict[str, str]] = {}
    for img in saved:
        if not img.manifest.layers:
            continue
        top = img.manifest.layers[-1].digest.partition(":")[2]
        for tag in img.tags:
            ref = parse_reference(tag)
            repos.setdefault(ref.familiar_name(), {})[ref.tag or "latest"] = top
    return json.dumps(repos, separators=(",", ":")).encode()


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _file_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, written: set[str]) -> None:
    if name in written:
        return
    written.add(name)
    tar.addfile(_file_info(name, len(data)), io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, store: ContentStore, digest: str, written: set[str]) -> None:
    name = blob_name(digest)
    if name in written:
        return
    written.add(name)
    with store.open(digest) as f:
        size = os.fstat(f.fileno()).st_size
        tar.addfile(_file_info(name, size), f)


__all__ = ["save"]
