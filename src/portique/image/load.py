"""`load`: the images of a docker-archive or an OCI archive (image/archive.py).

The archive is hostile: members are looked up by name only (the outer tar is
never extracted to disk), links and special files are refused where a file is
expected, documents are size-bounded, and every blob is checked against its
digest; each layer is decompressed on the fly to check its diff_id against
the image config. A compressed archive, or one read from a pipe, is first
spooled to an unnamed file.
"""

from __future__ import annotations

import contextlib
import json
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final

from portique import faults
from portique.errors import InvalidArgument
from portique.image.archive import (
    CHUNK,
    CONTAINERD_NAME,
    REF_NAME,
    InvalidArchive,
    Progress,
    blob_name,
    layer_media_type,
)
from portique.image.compression import Compression, CorruptData, Inflater, LayerHash, detect
from portique.oci import image as oci
from portique.oci.digest import DigestMismatch, parse_digest, sha256_digest
from portique.oci.reference import parse_reference

if TYPE_CHECKING:
    from portique.image.images import Images
    from portique.image.store import ContentStore, Writer
    from portique.journal import Operation

MAX_MEMBERS: Final = 100_000
MAX_JSON_MEMBER: Final = 4 * 1024 * 1024  # manifest.json, index.json, repositories
MAX_IMAGES: Final = 1000


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One image `load` registered: its id and the tags it now carries."""

    id: str
    tags: tuple[str, ...]


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
        self.layer_names: frozenset[str] = frozenset()
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

    def open(self, name: str, *, layers: frozenset[str] = frozenset()) -> tuple[IO[bytes], int]:
        """A regular member's data and size. With `layers` (the names the
        archive's manifests list as layers), `name` may also be a link to
        another of those layers (`layer_target`)."""
        info = self.members.get(name)
        if info is None:
            raise InvalidArchive(f"invalid archive: missing {name!r}")
        if layers and (info.issym() or info.islnk()):
            info = self.members[self.layer_target(name, info, layers)]
        if not info.isreg():
            raise InvalidArchive(f"invalid archive: {name!r} is not a regular file")
        f = self._tar.extractfile(info)
        assert f is not None  # a regular file always has data
        return f, info.size

    def layer_target(self, name: str, info: tarfile.TarInfo, layers: frozenset[str]) -> str:
        """The layer a link member stands for.

        `docker save` (the legacy layout) stores a layer an image holds twice,
        or two images share under different v1 ids, once, and the other
        `<id>/layer.tar` as a symlink `../<id>/layer.tar` to it. Such a link is
        followed one hop, inside the archive, to a regular member that a
        manifest lists as a layer; anything else is refused: a link out of the
        archive, to another kind of member (a config, manifest.json), to a
        link (chains and loops), to a directory.
        """
        # A symlink's target is relative to its directory, a hard link's to the root.
        target = _join_link(name, info.linkname) if info.issym() else _normalize(info.linkname)
        if target is None:
            raise InvalidArchive(
                f"invalid archive: layer {name!r} links to {info.linkname[:200]!r},"
                " outside the archive"
            )
        if target == name:
            raise InvalidArchive(f"invalid archive: layer {name!r} links to itself")
        found = self.members.get(target)
        if found is None:
            raise InvalidArchive(
                f"invalid archive: layer {name!r} links to {target[:200]!r}, which it does not hold"
            )
        if target not in layers:
            raise InvalidArchive(
                f"invalid archive: layer {name!r} links to {target[:200]!r}, which is no layer"
            )
        if not found.isreg():
            raise InvalidArchive(
                f"invalid archive: layer {name!r} links to {target[:200]!r},"
                " which is not a regular file (links are followed once)"
            )
        return target

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


def _join_link(name: str, linkname: str) -> str | None:
    """Symlink member `name`'s target as a member name; None when it leaves the archive."""
    if linkname.startswith("/"):
        return None
    parts = name.split("/")[:-1]
    for part in linkname.split("/"):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts) or None


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
    compression = detect(head)
    if pos >= 0 and compression is Compression.NONE:
        inp.seek(pos)
        yield inp
        return
    tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryFile(dir=tmpdir) as spool:
        inflater = Inflater(compression) if compression is not Compression.NONE else None
        data = head
        while data:
            if inflater is None:
                spool.write(data)
            else:
                try:
                    for out in inflater.feed(data):
                        spool.write(out)
                except CorruptData as exc:
                    raise InvalidArchive(exc.message) from None
            data = inp.read(CHUNK)
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


def _layer_names(entries: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """Every member manifest.json lists as a layer (what a layer link may point to)."""
    names: set[str] = set()
    for entry in entries:
        layers = entry.get("Layers")
        if isinstance(layers, list):
            names.update(n for x in layers if isinstance(x, str) and (n := _normalize(x)))
    return frozenset(names)


def _load_docker(images: Images, archive: _Archive) -> list[LoadedImage]:
    loaded = []
    entries = _docker_entries(archive)
    archive.layer_names = _layer_names(entries)
    for i, entry in enumerate(entries):
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
        manifest = oci.new_manifest(config_digest, len(config_bytes), [d.to_json() for d in descs])
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        loaded.append(_register(images, manifest_bytes, config_bytes, descs, tags))
    return loaded


def _store_layer(
    store: ContentStore, archive: _Archive, name: str, diff_id: str, expected: str | None = None
) -> oci.Descriptor:
    """Copy one layer member into the store, checking its digest and its diff_id."""
    f, size = archive.open(name, layers=archive.layer_names)
    # Only blobs/<alg>/<hex> promises a blob digest; other tools name layers by
    # diff_id (skopeo's <hex>.tar) or by a legacy id (<id>/layer.tar).
    if expected is None and name.startswith("blobs/"):
        expected = _digest_from_name(name)
    with f:
        head = f.read(16)
        f.seek(0)
        compression = detect(head)
        if expected is None and compression is Compression.NONE:
            expected = diff_id  # an uncompressed layer's blob digest is its diff_id
        if expected is None:
            # A compressed layer under a name that promises nothing: hash it first.
            h = LayerHash()
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
            expected = h.digest
            f.seek(0)
        h = LayerHash()
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
    return oci.Descriptor(layer_media_type(h.compression or Compression.NONE), expected, size)


def _pump(
    f: IO[bytes], h: LayerHash, w: Writer | None, archive: _Archive, digest: str, size: int
) -> None:
    """Hash (and, given a writer, store) a layer member, reporting progress."""
    for chunk in iter(lambda: f.read(CHUNK), b""):
        try:
            h.update(chunk)
        except CorruptData as exc:
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
    archive.layer_names = frozenset(
        blob_name(layer.digest) for _, _, m in images_in for layer in m.layers
    )
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
            if archive.members.get(blob_name(layer.digest)) is None and images.store.has(
                layer.digest
            ):
                continue  # a blob left out of the archive that we already hold
            stored = _store_layer(
                images.store, archive, blob_name(layer.digest), diff_id, layer.digest
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
            if _normalize(name) != blob_name(layer.digest):
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
    data = archive.read(blob_name(digest), limit)
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


__all__ = ["MAX_IMAGES", "MAX_JSON_MEMBER", "MAX_MEMBERS", "LoadedImage", "load"]
