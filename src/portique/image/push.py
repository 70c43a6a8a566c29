"""Push: a local image's blobs and manifest to a registry, digests unchanged.

For each layer (in parallel) and then the config: a HEAD tells whether the
registry has it (skip: "Layer already exists"); else, when the image came from
another repository of the same registry, a cross-repository mount is tried
("Mounted from ..."); else the blob is uploaded from the content store (one
PUT, or PATCH chunks for large blobs). The manifest goes last, byte for byte
as stored, so its digest is the one the image was pulled or loaded with.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from portique.errors import InvalidArgument, NotFound
from portique.oci import image as oci
from portique.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images
    from portique.image.pull import Progress
    from portique.image.registry.client import RegistryClient

UPLOAD_WORKERS: Final = 4
MAX_MOUNT_SOURCES: Final = 3


@dataclass(frozen=True, slots=True)
class PushResult:
    reference: Reference
    digest: str
    size: int  # of the manifest, as Docker prints it


def _mount_sources(record: ImageRecord, target: Reference) -> list[Reference]:
    """Repositories on the target's registry this image is known from (other than target)."""
    out: list[Reference] = []
    for name in [*record.repo_digests, *record.repo_tags]:
        try:
            ref = parse_reference(name.partition("@")[0], default_tag=None)
        except InvalidArgument:
            continue
        fresh = all(r.path != ref.path for r in out)
        if ref.domain == target.domain and ref.path != target.path and fresh:
            out.append(ref)
    return out[:MAX_MOUNT_SOURCES]


def push_image(
    images: Images,
    name: str,
    *,
    dest: str | None = None,
    progress: Progress | None = None,
    client: RegistryClient | None = None,
    chunk_size: int | None = None,
) -> PushResult:
    """Push local image `name` to `dest` (default: `name` itself)."""
    from portique.image.pull import ProgressEvent, short_id

    report = progress or (lambda e: None)
    record = images.resolve(name)
    target = parse_reference(dest or name)
    if target.digest is not None:
        raise InvalidArgument(f"cannot push to a digest reference: {target.familiar()}")
    if client is None:
        from portique.image.registry.client import RegistryClient

        client = RegistryClient()
    store = images.store
    manifest_bytes = store.read_bytes(record.manifest_digest, limit=oci.MAX_MANIFEST_SIZE)
    manifest = oci.parse_manifest(manifest_bytes)
    if not isinstance(manifest, oci.Manifest):
        raise InvalidArgument(f"image {record.short_id}: stored manifest is not an image manifest")
    for desc in (manifest.config, *manifest.layers):
        foreign = desc.media_type in oci.NONDISTRIBUTABLE_LAYER_TYPES and desc.urls
        if not foreign and not store.has(desc.digest):
            raise NotFound(
                f"blob {desc.digest} of image {record.short_id} is missing from the store"
            )
    sources = _mount_sources(record, target)

    def push_blob(desc: oci.Descriptor, *, report_it: bool = True) -> None:
        sid = short_id(desc.digest)
        if report_it:
            report(ProgressEvent(sid, "Preparing"))
        if desc.media_type in oci.NONDISTRIBUTABLE_LAYER_TYPES and desc.urls:
            # Docker never pushes foreign layers: they live at their URLs.
            if report_it:
                report(ProgressEvent(sid, "Skipped foreign layer"))
            return
        if client.blob_exists(target, desc.digest, push=True):
            if report_it:
                report(ProgressEvent(sid, "Layer already exists"))
            return
        for source in sources:
            if client.mount_blob(target, desc.digest, source):
                if report_it:
                    report(ProgressEvent(sid, f"Mounted from {source.path}"))
                return
        size = store.size(desc.digest)
        if size != desc.size:
            raise InvalidArgument(
                f"blob {desc.digest}: {size} bytes in store, manifest says {desc.size}"
            )
        if report_it:
            report(ProgressEvent(sid, "Pushing", 0, size))
        with store.open(desc.digest) as f:
            client.upload_blob(target, desc.digest, size, f, chunk_size=chunk_size)
        if report_it:
            report(ProgressEvent(sid, "Pushed", size, size))

    unique = list({d.digest: d for d in manifest.layers}.values())
    if unique:
        with ThreadPoolExecutor(
            min(len(unique), UPLOAD_WORKERS), thread_name_prefix="push"
        ) as pool:
            # list() re-raises the first failure.
            list(pool.map(push_blob, unique))
    push_blob(manifest.config, report_it=False)
    digest = client.put_manifest(target, manifest_bytes, manifest.media_type)
    if digest != record.manifest_digest:
        raise InvalidArgument(
            f"pushed manifest hashes to {digest}, image has {record.manifest_digest}"
        )
    # Remember where the image now lives, as Docker does (RepoDigests).
    images.register(
        manifest_bytes,
        digest,
        store.read_bytes(manifest.config.digest, limit=oci.MAX_CONFIG_SIZE),
        tags=[],
        repo_digest=f"{target.repository}@{digest}",
    )
    return PushResult(target, digest, len(manifest_bytes))


__all__ = ["PushResult", "push_image"]
