"""Image archives: `save`, `load` and `import`.

Two archive formats, both tar files:

- docker-archive (`docker save`): manifest.json (`[{Config, RepoTags, Layers}]`),
  repositories, the config and layer files. Like Docker >= 25 we name every file
  `blobs/sha256/<hex>` and also write an OCI layout (oci-layout, index.json) into
  the same tar, so that the original manifest, and so every digest, survives a
  save/load round trip.
- oci-archive: the OCI image layout (oci-layout, index.json, blobs/) in a tar.

Loading treats the archive as hostile: members are looked up by name only (the
outer tar is never extracted to disk), links and special files are refused where
a file is expected, documents are size-bounded, and every blob is checked
against its digest; each layer is decompressed on the fly to check its diff_id
against the image config.

`import_rootfs` turns a root filesystem tarball into a one-layer image, like
`docker import`, applying Dockerfile-style `--change` instructions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final

from portique import faults
from portique.errors import InvalidArgument
from portique.oci import image as oci
from portique.oci.digest import DigestMismatch, parse_digest, sha256_digest
from portique.oci.reference import parse_reference

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images
    from portique.image.store import ContentStore, Writer
    from portique.journal import Operation

_CHUNK: Final = 1 << 20
MAX_MEMBERS: Final = 100_000
MAX_JSON_MEMBER: Final = 4 * 1024 * 1024  # manifest.json, index.json, repositories
MAX_IMAGES: Final = 1000

_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_BZIP2_MAGIC: Final = b"BZh"

OCI_LAYOUT: Final = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"


# progress(layer digest, bytes done, bytes total)
Progress = Callable[[str, int, int], None]


class InvalidArchive(InvalidArgument):
    """The archive is malformed, truncated or lies about its content."""


class ArchiveFormat(StrEnum):
    DOCKER = "docker-archive"
    OCI = "oci-archive"


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One image `load` registered: its id and the tags it now carries."""

    id: str
    tags: tuple[str, ...]


# ---- compression ------------------------------------------------------------------


def sniff_compression(head: bytes) -> str:
    """ "gzip", "zstd", "xz", "bzip2" or "" from a stream's first bytes."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    if head.startswith(_BZIP2_MAGIC):
        return "bzip2"
    return ""


class _Inflater:
    """Incremental decompression that copes with concatenated gzip/zstd frames."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._obj: Any = self._new()

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if self.kind == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj()
        if self.kind == "xz":
            import lzma

            return lzma.LZMADecompressor()
        if self.kind == "bzip2":
            import bz2

            return bz2.BZ2Decompressor()
        raise InvalidArchive(f"unsupported compression {self.kind!r}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        for _ in range(1 << 16):  # bounded: one round per concatenated frame
            try:
                out = self._obj.decompress(data)
            except Exception as exc:  # zlib.error, ZstdError, LZMAError, OSError
                raise InvalidArchive(f"corrupt {self.kind} data: {exc}") from None
            if out:
                yield out
            if not getattr(self._obj, "eof", False):
                return
            data = self._obj.unused_data
            self._obj = self._new()
            if not data:
                return


class _LayerHash:
    """Digest of a blob as given, and of its uncompressed tar (the diff_id)."""

    def __init__(self) -> None:
        self.raw = hashlib.sha256()
        self.diff: Any = None
        self.size = 0
        self.compression: str | None = None
        self._inflater: _Inflater | None = None

    def update(self, data: bytes) -> None:
        if self.compression is None:
            self.compression = sniff_compression(data)
            if self.compression:
                self.diff = hashlib.sha256()
                self._inflater = _Inflater(self.compression)
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


def _layer_media_type(compression: str) -> str:
    try:
        return {
            "": oci.MEDIA_TYPE_OCI_LAYER,
            "gzip": oci.MEDIA_TYPE_OCI_LAYER_GZIP,
            "zstd": oci.MEDIA_TYPE_OCI_LAYER_ZSTD,
        }[compression]
    except KeyError:
        raise InvalidArchive(f"unsupported layer compression {compression}") from None


# ---- reading the outer tar --------------------------------------------------------


class _Archive:
    """Read-only, by-name access to a (seekable) tar of untrusted content."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")  # noqa: SIM115
        except tarfile.TarError as exc:
            raise InvalidArchive(f"invalid archive: not a tar file ({exc})") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        self.progress: Progress | None = None
        self.op: Operation | None = None
        try:
            for count, info in enumerate(self._tar, 1):
                if count > MAX_MEMBERS:
                    raise InvalidArchive(f"invalid archive: more than {MAX_MEMBERS} members")
                name = _normalize(info.name)
                if name is None:
                    continue  # never looked up: `..`, absolute or empty names are inert
                if name in self.members and not info.isdir():
                    raise InvalidArchive(f"invalid archive: duplicate member {name!r}")
                self.members[name] = info
        except tarfile.TarError as exc:
            raise InvalidArchive(f"invalid archive: {exc}") from None

    def __contains__(self, name: str) -> bool:
        info = self.members.get(name)
        return info is not None and info.isreg()

    def open(self, name: str) -> tuple[IO[bytes], int]:
        info = self.members.get(name)
        if info is None:
            raise InvalidArchive(f"invalid archive: missing {name!r}")
        if not info.isreg():
            raise InvalidArchive(f"invalid archive: {name!r} is not a regular file")
        f = self._tar.extractfile(info)
        assert f is not None  # a regular file always has data
        return f, info.size

    def read(self, name: str, limit: int = MAX_JSON_MEMBER) -> bytes:
        f, size = self.open(name)
        if size > limit:
            raise InvalidArchive(f"invalid archive: {name!r} is larger than {limit} bytes")
        with f:
            return f.read(limit)

    def read_json(self, name: str, limit: int = MAX_JSON_MEMBER) -> Any:
        try:
            return json.loads(self.read(name, limit))
        except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
            raise InvalidArchive(f"invalid archive: {name!r} is not valid JSON ({exc})") from None


def _normalize(name: str) -> str | None:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or name.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def _blob_name(digest: str) -> str:
    algorithm, _, hexpart = parse_digest(digest).partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _digest_from_name(name: str) -> str | None:
    """The digest a member's name promises: blobs/sha256/<hex> or <hex>.json / <hex>.tar."""
    base = name.rsplit("/", 1)[-1]
    if name.startswith("blobs/sha256/"):
        candidate = "sha256:" + base
    elif base.endswith((".json", ".tar")) and name.count("/") == 0:
        candidate = "sha256:" + base[:-5] if base.endswith(".json") else "sha256:" + base[:-4]
    else:
        return None
    try:
        return parse_digest(candidate)
    except InvalidArgument:
        return None


@contextlib.contextmanager
def _seekable(inp: BinaryIO, tmpdir: Path) -> Iterator[IO[bytes]]:
    """The archive as a seekable, uncompressed file (spooled when it is a pipe or compressed)."""
    try:
        pos = inp.tell() if inp.seekable() else -1
    except (AttributeError, OSError):
        pos = -1
    head = inp.read(512)
    compression = sniff_compression(head)
    if pos >= 0 and not compression:
        inp.seek(pos)
        yield inp
        return
    tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryFile(dir=tmpdir) as spool:
        inflater = _Inflater(compression) if compression else None
        data = head
        while data:
            if inflater is None:
                spool.write(data)
            else:
                for out in inflater.feed(data):
                    spool.write(out)
            data = inp.read(_CHUNK)
        spool.seek(0)
        yield spool


# ---- load ------------------------------------------------------------------------


def load(
    images: Images,
    inp: BinaryIO,
    *,
    progress: Progress | None = None,
    platform: str | None = None,
) -> list[LoadedImage]:
    """Load every image of a docker-archive or OCI archive; return what was loaded.

    `progress(layer_digest, bytes_done, bytes_total)` is called as layers are copied.
    `platform` picks the image of a multi-platform index (default: the host's).
    """
    from portique import journal

    images.store.sweep()
    conn = journal.open_journal(images.root)
    try:
        # The load's journal entry names each layer's ingest and unpack files
        # before they are made; a killed load leaves it for the recovery.
        op = journal.Operation.begin(conn, "load")
        try:
            with _seekable(inp, images.root / "tmp") as f:
                archive = _Archive(f)
                archive.progress = progress
                archive.op = op
                if "index.json" in archive:
                    loaded = _load_oci(images, archive, platform or oci.host_platform())
                elif "manifest.json" in archive:
                    loaded = _load_docker(images, archive)
                else:
                    raise InvalidArchive(
                        "invalid archive: no manifest.json or index.json "
                        "(expected a docker-archive or an OCI layout)"
                    )
        finally:
            op.end()
    finally:
        conn.close()
    if not loaded:
        raise InvalidArchive("invalid archive: it contains no image")
    return loaded


def _docker_entries(archive: _Archive) -> list[Mapping[str, Any]]:
    doc = archive.read_json("manifest.json")
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise InvalidArchive("invalid archive: manifest.json: expected a list of objects")
    if len(doc) > MAX_IMAGES:
        raise InvalidArchive(f"invalid archive: manifest.json lists more than {MAX_IMAGES} images")
    return doc


def _load_docker(images: Images, archive: _Archive) -> list[LoadedImage]:
    loaded = []
    for i, entry in enumerate(_docker_entries(archive)):
        where = f"manifest.json[{i}]"
        config_name = entry.get("Config")
        layers = entry.get("Layers")
        tags = entry.get("RepoTags") or []
        if not isinstance(config_name, str) or _normalize(config_name) is None:
            raise InvalidArchive(f"invalid archive: {where}.Config: expected a file name")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArchive(f"invalid archive: {where}.Layers: expected a list of names")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArchive(f"invalid archive: {where}.RepoTags: expected a list of strings")
        config_name = _normalize(config_name) or ""
        config_bytes = archive.read(config_name, oci.MAX_CONFIG_SIZE)
        config_digest = sha256_digest(config_bytes)
        promised = _digest_from_name(config_name)
        if promised is not None and promised != config_digest:
            raise DigestMismatch(f"config {config_name!r} hashes to {config_digest}")
        config = oci.parse_image_config(config_bytes)
        if len(config.diff_ids) != len(layers):
            raise InvalidArchive(
                f"invalid archive: {where}: {len(layers)} layers for {len(config.diff_ids)} diff_ids"
            )
        descs = []
        for name, diff_id in zip(layers, config.diff_ids, strict=True):
            norm = _normalize(name)
            if norm is None:
                raise InvalidArchive(f"invalid archive: bad layer name {name[:200]!r}")
            descs.append(_store_layer(images.store, archive, norm, diff_id))
        images.store.write_bytes(config_bytes, config_digest)
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.MEDIA_TYPE_OCI_MANIFEST,
            "config": {
                "mediaType": oci.MEDIA_TYPE_OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [d.to_json() for d in descs],
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        loaded.append(_register(images, manifest_bytes, config_bytes, descs, tags))
    return loaded


def _store_layer(
    store: ContentStore, archive: _Archive, name: str, diff_id: str, expected: str | None = None
) -> oci.Descriptor:
    """Copy one layer member into the store, checking its digest and its diff_id."""
    f, size = archive.open(name)
    # Only blobs/<alg>/<hex> promises a blob digest; other tools name layers by
    # diff_id (skopeo's <hex>.tar) or by a legacy id (<id>/layer.tar).
    if expected is None and name.startswith("blobs/"):
        expected = _digest_from_name(name)
    with f:
        head = f.read(16)
        f.seek(0)
        compression = sniff_compression(head)
        if expected is None and not compression:
            expected = diff_id  # an uncompressed layer's blob digest is its diff_id
        if expected is None:
            # A compressed layer under a name that promises nothing: hash it first.
            h = _LayerHash()
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
            expected = h.digest
            f.seek(0)
        h = _LayerHash()
        if archive.op is not None:
            archive.op.add(
                {"type": "ingest", "digest": expected}, {"type": "staging", "key": expected}
            )
        if store.has(expected):
            _pump(f, h, None, archive, expected, size)
        else:
            with store.lock(expected), store.ingest(expected, size) as w:
                if w.offset:
                    w.restart()
                _pump(f, h, w, archive, expected, size)
    if h.digest != expected or h.size != size:
        raise DigestMismatch(f"layer {name!r} hashes to {h.digest}, expected {expected}")
    if h.diff_id != diff_id:
        raise DigestMismatch(
            f"layer {name!r}: uncompressed content hashes to {h.diff_id}, the config says {diff_id}"
        )
    faults.point("load.layer-stored")
    return oci.Descriptor(_layer_media_type(h.compression or ""), expected, size)


def _pump(
    f: IO[bytes], h: _LayerHash, w: Writer | None, archive: _Archive, digest: str, size: int
) -> None:
    """Hash (and, given a writer, store) a layer member, reporting progress."""
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        try:
            h.update(chunk)
        except InvalidArchive as exc:
            if w is not None:
                w.restart()  # nothing of a corrupt stream is kept for a resume
            raise InvalidArchive(f"layer {digest}: {exc.message}") from None
        if w is not None:
            w.write(chunk)
            faults.point("load.layer-partial")
        if archive.progress is not None:
            archive.progress(digest, h.size, size)


def _load_oci(images: Images, archive: _Archive, platform: str) -> list[LoadedImage]:
    index = oci.parse_manifest(archive.read("index.json"), oci.MEDIA_TYPE_OCI_INDEX)
    if not isinstance(index, oci.Index):
        raise InvalidArchive("invalid archive: index.json is not an image index")
    # An index lists a manifest once per name: load each manifest once, with all its names.
    names: dict[str, list[str]] = {}
    unique: list[oci.Descriptor] = []
    for desc in index.manifests[:MAX_IMAGES]:
        if desc.digest not in names:
            names[desc.digest] = []
            unique.append(desc)
        names[desc.digest] += _names_from_annotations(desc.annotations)
    images_in: list[tuple[oci.Descriptor, bytes, oci.Manifest]] = []
    for desc in unique:
        manifest_bytes = _read_blob(archive, desc.digest, desc.size, oci.MAX_MANIFEST_SIZE)
        parsed = oci.parse_manifest(manifest_bytes, desc.media_type)
        if isinstance(parsed, oci.Index):
            # A multi-platform image: load one platform (the host's), as pull does.
            one = oci.select_platform(parsed, platform)
            manifest_bytes = _read_blob(archive, one.digest, one.size, oci.MAX_MANIFEST_SIZE)
            parsed = oci.parse_manifest(manifest_bytes, one.media_type)
            names[one.digest] = names[desc.digest]
            desc = one
        if not isinstance(parsed, oci.Manifest):
            raise InvalidArchive(f"invalid archive: {desc.digest} is not an image manifest")
        images_in.append((desc, manifest_bytes, parsed))
    # A docker-archive with an OCI layout inside: its RepoTags count too, and
    # its manifest.json must describe the same images (Docker reads only that).
    docker_tags = _check_docker_entries(archive, [m for _, _, m in images_in])
    loaded = []
    for desc, manifest_bytes, parsed in images_in:
        tags = names[desc.digest]
        config_bytes = _read_blob(
            archive, parsed.config.digest, parsed.config.size, oci.MAX_CONFIG_SIZE
        )
        config = oci.parse_image_config(config_bytes)
        if len(config.diff_ids) != len(parsed.layers):
            raise InvalidArchive(
                f"invalid archive: manifest {desc.digest} has {len(parsed.layers)} layers "
                f"for {len(config.diff_ids)} diff_ids"
            )
        for layer, diff_id in zip(parsed.layers, config.diff_ids, strict=True):
            oci.layer_compression(layer)  # refuses non-layer media types
            if archive.members.get(_blob_name(layer.digest)) is None and images.store.has(
                layer.digest
            ):
                continue  # a blob left out of the archive that we already hold
            stored = _store_layer(
                images.store, archive, _blob_name(layer.digest), diff_id, layer.digest
            )
            if stored.size != layer.size:
                raise DigestMismatch(f"layer {layer.digest}: size {stored.size} != {layer.size}")
        images.store.write_bytes(config_bytes, parsed.config.digest)
        tags += docker_tags.get(parsed.config.digest, [])
        loaded.append(
            _register(images, manifest_bytes, config_bytes, parsed.layers, tags, desc.digest, True)
        )
    return loaded


def _check_docker_entries(
    archive: _Archive, manifests: Sequence[oci.Manifest]
) -> dict[str, list[str]]:
    """The RepoTags of manifest.json by config digest, after checking that each
    entry for an image we load lists exactly its layers: Docker loads the
    archive from manifest.json alone, so an entry whose Layers do not match
    the config's diff_ids must not load here either."""
    tags: dict[str, list[str]] = {}
    if "manifest.json" not in archive:
        return tags
    by_config = {m.config.digest: m for m in manifests}
    for i, entry in enumerate(_docker_entries(archive)):
        where = f"manifest.json[{i}]"
        cfg = _digest_from_name(_normalize(str(entry.get("Config", ""))) or "")
        manifest = by_config.get(cfg or "")
        if manifest is None:
            continue  # another platform's image of a multi-platform index: not loaded
        layers = entry.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArchive(f"invalid archive: {where}.Layers: expected a list of names")
        if len(layers) != len(manifest.layers):
            raise InvalidArchive(
                f"invalid archive: {where}: invalid manifest, layers length mismatch: "
                f"expected {len(manifest.layers)}, got {len(layers)}"
            )
        for n, (name, layer) in enumerate(zip(layers, manifest.layers, strict=True)):
            if _normalize(name) != _blob_name(layer.digest):
                raise InvalidArchive(
                    f"invalid archive: {where}: layer {n} is {name[:200]!r}, "
                    f"the image's layer is {layer.digest}"
                )
        entry_tags = entry.get("RepoTags") or []
        if isinstance(entry_tags, list):
            tags.setdefault(manifest.config.digest, []).extend(
                t for t in entry_tags if isinstance(t, str)
            )
    return tags


def _names_from_annotations(annotations: Mapping[str, str]) -> list[str]:
    """A full image name from io.containerd.image.name, else from ref.name if it has one."""
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if not value:
            continue
        if key == REF_NAME and ":" not in value and "/" not in value:
            continue  # a bare tag ("latest"): no repository to put it on
        try:
            ref = parse_reference(value)
        except InvalidArgument:
            continue
        if ref.digest is None:  # a name pinned by digest is no tag to give the image
            return [ref.familiar()]
    return []


def _read_blob(archive: _Archive, digest: str, size: int, limit: int) -> bytes:
    if size > limit:
        raise InvalidArchive(f"invalid archive: blob {digest} is larger than {limit} bytes")
    data = archive.read(_blob_name(digest), limit)
    if len(data) != size or sha256_digest(data) != digest:
        raise DigestMismatch(f"blob {digest}: content does not match its digest or size")
    return data


def _register(
    images: Images,
    manifest_bytes: bytes,
    config_bytes: bytes,
    layers: Sequence[oci.Descriptor],
    tags: Sequence[str],
    manifest_digest: str | None = None,
    original: bool = False,
) -> LoadedImage:
    """Store the manifest and register the image under `tags`.

    `original`: the manifest is the image's own (from an OCI layout), not one we
    synthesised, so its digest is what a registry serves: record it as the
    repository digest of the first tag, as Podman does.
    """
    clean = []
    for tag in tags:
        ref = parse_reference(tag)
        if ref.digest is not None:
            raise InvalidArchive(f"invalid archive: tag {tag!r} carries a digest")
        if ref.familiar() not in clean:
            clean.append(ref.familiar())
    digest = images.store.write_bytes(manifest_bytes, manifest_digest)
    images.unpack_layers(list(layers))
    faults.point("load.before-register")
    repo_digest = None
    if original and clean:
        repo_digest = f"{parse_reference(clean[0]).repository}@{digest}"
    record = images.register(
        manifest_bytes, digest, config_bytes, tags=clean, repo_digest=repo_digest
    )
    return LoadedImage(record.id, tuple(clean))


# ---- save ------------------------------------------------------------------------


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
            _add_bytes(tar, _blob_name(img.manifest_digest), img.manifest_bytes, written)
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
            "Config": _blob_name(img.manifest.config.digest),
            "RepoTags": list(img.tags) or None,
            "Layers": [_blob_name(d.digest) for d in img.manifest.layers],
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
    name = _blob_name(digest)
    if name in written:
        return
    written.add(name)
    with store.open(digest) as f:
        size = os.fstat(f.fileno()).st_size
        tar.addfile(_file_info(name, size), f)


# ---- import ----------------------------------------------------------------------


def import_rootfs(
    images: Images,
    source: BinaryIO,
    ref: str | None,
    *,
    changes: Sequence[str] = (),
    message: str = "",
    source_name: str = "-",
) -> ImageRecord:
    """Make a one-layer image from a root filesystem tar (plain, gzip or zstd)."""
    config_changes = parse_changes(changes)
    tags = [parse_reference(ref).familiar()] if ref else []
    tmpdir = images.root / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Unnamed (O_TMPFILE): a killed import leaves no spool file behind.
    with tempfile.TemporaryFile(dir=tmpdir) as spool:
        h = _LayerHash()
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            h.update(chunk)
            spool.write(chunk)
        if h.size == 0:
            raise InvalidArgument("import: the source is empty, expected a tar archive")
        if h.compression not in ("", "gzip", "zstd"):
            raise InvalidArgument(f"import: unsupported compression {h.compression}")
        spool.flush()
        spool.seek(0)
        _check_is_tar(spool, h.compression or "")
        spool.seek(0)
        digest = h.digest
        if not images.store.has(digest):
            with images.store.lock(digest), images.store.ingest(digest, h.size) as w:
                if w.offset:
                    w.restart()
                shutil.copyfileobj(spool, w, _CHUNK)
    layer = oci.Descriptor(_layer_media_type(h.compression or ""), digest, h.size)
    config_bytes = build_import_config(h.diff_id, config_changes, message, source_name)
    config_digest = images.store.write_bytes(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MEDIA_TYPE_OCI_MANIFEST,
        "config": {
            "mediaType": oci.MEDIA_TYPE_OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [layer.to_json()],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = images.store.write_bytes(manifest_bytes)
    images.unpack_layers([layer])
    return images.register(manifest_bytes, manifest_digest, config_bytes, tags=tags)


def _check_is_tar(f: IO[bytes], compression: str) -> None:
    head = f.read(64 * 1024)
    if compression:
        head = b"".join(_Inflater(compression).feed(head))
    if len(head) < 512:
        # An empty tar is two zero blocks; anything shorter is not a tar.
        raise InvalidArgument("import: the source is not a tar archive")
    if head[:512] == bytes(512):
        return
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        raise InvalidArgument("import: the source is not a tar archive") from None


def build_import_config(
    diff_id: str, container_config: Mapping[str, Any], message: str, source_name: str
) -> bytes:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # As `docker import`: the message, or where the tarball came from, is the comment.
    comment = message or f"Imported from {source_name}"
    history: dict[str, Any] = {"created": created, "comment": comment}
    config: dict[str, Any] = {
        "architecture": oci.parse_platform(oci.host_platform()).architecture,
        "os": "linux",
        "created": created,
        "config": dict(container_config),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [history],
    }
    config["comment"] = comment
    return json.dumps(config, separators=(",", ":")).encode()


# ---- --change ----------------------------------------------------------------------

# The Dockerfile instructions `docker import --change` / `docker commit --change` accept.
CHANGE_INSTRUCTIONS: Final = frozenset(
    {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL"}
)


def parse_changes(changes: Sequence[str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply Dockerfile-style instructions to an image's container config (`config.config`).

    `CMD ["sh"]`, `CMD echo hi` (shell form: ["/bin/sh", "-c", ...]), `ENTRYPOINT`,
    `ENV K=V [K2=V2]` or `ENV K V`, `EXPOSE 80 53/udp`, `LABEL k=v`, `USER`,
    `VOLUME ["/data"]` or `VOLUME /a /b`, `WORKDIR`, `STOPSIGNAL`.
    """
    config: dict[str, Any] = {k: _copy(v) for k, v in (base or {}).items()}
    for change in changes:
        instruction, _, rest = change.strip().partition(" ")
        word = instruction.upper()
        rest = rest.strip()
        if word not in CHANGE_INSTRUCTIONS:
            raise InvalidArgument(
                f"invalid change {change[:100]!r}: {instruction[:40]} is not one of "
                + ", ".join(sorted(CHANGE_INSTRUCTIONS))
            )
        if not rest and word not in ("CMD", "ENTRYPOINT"):
            raise InvalidArgument(f"invalid change {change[:100]!r}: {word} needs an argument")
        if word in ("CMD", "ENTRYPOINT"):
            config[word.title() if word == "CMD" else "Entrypoint"] = _argv(rest)
        elif word == "ENV":
            env = [e for e in config.get("Env") or [] if isinstance(e, str)]
            for key, value in _pairs(rest, change, legacy=True):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif word == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(rest, change, legacy=False))
            config["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in _words(rest, change):
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536:
                    raise InvalidArgument(f"invalid change {change[:100]!r}: bad port {port!r}")
                if proto.lower() not in ("", "tcp", "udp", "sctp"):
                    raise InvalidArgument(
                        f"invalid change {change[:100]!r}: bad protocol {proto!r}"
                    )
                ports[f"{int(number)}/{proto.lower() or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif word == "VOLUME":
            paths = _json_list(rest)
            volumes = dict(config.get("Volumes") or {})
            volumes.update({p: {} for p in (paths if paths is not None else _words(rest, change))})
            config["Volumes"] = volumes
        elif word == "USER":
            config["User"] = rest
        elif word == "WORKDIR":
            config["WorkingDir"] = rest
        else:
            config["StopSignal"] = rest
    return config


def _copy(v: Any) -> Any:
    return json.loads(json.dumps(v))


def _json_list(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


def _argv(text: str) -> list[str]:
    """Exec form (a JSON list) as is; shell form wrapped in /bin/sh -c, as Docker does."""
    exec_form = _json_list(text)
    if exec_form is not None:
        return exec_form
    return ["/bin/sh", "-c", text] if text else []


def _words(text: str, change: str) -> list[str]:
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid change {change[:100]!r}: {exc}") from None


def _pairs(text: str, change: str, *, legacy: bool) -> list[tuple[str, str]]:
    words = _words(text, change)
    if legacy and words and "=" not in words[0]:
        # `ENV KEY value with spaces`: the old one-variable form.
        key, _, value = text.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"invalid change {change[:100]!r}: expected KEY=VALUE, got {w!r}")
        pairs.append((key, value))
    return pairs


__all__ = [
    "ArchiveFormat",
    "InvalidArchive",
    "LoadedImage",
    "Progress",
    "import_rootfs",
    "load",
    "parse_changes",
    "save",
    "sniff_compression",
]
