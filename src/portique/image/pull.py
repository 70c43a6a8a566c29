"""Pull: registry -> content store -> snapshots -> image metadata.

1. Resolve the reference to a manifest; an index picks the platform's entry
   (linux/amd64 unless asked otherwise) and that manifest is fetched by digest.
2. Fetch the config and the layers in parallel. Each blob streams into the
   content store, verified (digest and size) as it arrives; a blob already in
   the store is not fetched; a blob another process is fetching is waited for
   (the store's per-digest lock), so a race fetches it once. An interrupted
   download keeps its verified-so-far prefix in the store's ingest area and
   resumes with a Range request, in this pull or the next.
3. Each layer is unpacked as soon as its blob is complete, so downloading and
   unpacking overlap; layers unpack in parallel (one snapshot per layer).
4. The image is registered with its tag and repository digest.

Non-distributable ("foreign") layers are fetched from the registry like any
other blob, never from the URLs in their descriptor: following them would let
a manifest make us fetch arbitrary URLs, and registries mirror such layers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from portique import faults
from portique.errors import InvalidArgument, NotFound, PortiqueError
from portique.image.registry.errors import RegistryError
from portique.oci import image as oci
from portique.oci.digest import DigestMismatch
from portique.oci.reference import Reference, parse_reference

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images
    from portique.image.registry.client import RegistryClient

DOWNLOAD_WORKERS: Final = 4
# Transient failures of one blob download before giving up (each resumes).
BLOB_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One line of Docker-style progress: `<id>: <status> [current/total]`."""

    id: str  # short (12 hex) blob id, or "" for a message about the whole image
    status: str
    current: int = 0
    total: int = 0


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class PullResult:
    record: ImageRecord
    reference: Reference
    digest: str  # what the user can pull by: the index digest for a multi-platform image
    manifest_digest: str  # the platform's image manifest
    downloaded: bool  # False: the image was already here ("Image is up to date")


def short_id(digest: str) -> str:
    return digest.partition(":")[2][:12]


def _noop(event: ProgressEvent) -> None:
    pass


class _Abort(Exception):
    """Another layer failed: stop this one quietly."""


def resolve_manifest(
    client: RegistryClient, ref: Reference, platform: str | None
) -> tuple[str, bytes, str, oci.Manifest]:
    """(top digest, manifest bytes, manifest digest, manifest) for `ref` on `platform`."""
    data, media_type, digest = client.get_manifest(ref)
    parsed = oci.parse_manifest(data, media_type)
    if isinstance(parsed, oci.Manifest):
        return digest, data, digest, parsed
    entry = oci.select_platform(parsed, platform or "linux/amd64")
    child_data, child_type, child_digest = client.get_manifest(ref.with_digest(entry.digest))
    if len(child_data) != entry.size:
        raise DigestMismatch(
            f"manifest {entry.digest}: {len(child_data)} bytes, index says {entry.size}"
        )
    child = oci.parse_manifest(child_data, child_type or entry.media_type)
    if not isinstance(child, oci.Manifest):
        raise oci.InvalidManifest(f"index entry {entry.digest} is not an image manifest")
    return digest, child_data, child_digest, child


def _check_platform(config: oci.ImageConfig, ref: Reference, platform: str | None) -> None:
    if platform is None:
        return
    want = oci.parse_platform(platform)
    if not oci.platform_matches(want, config.platform):
        raise InvalidArgument(
            f"image with reference {ref.familiar()} was found but its platform "
            f"({config.platform}) does not match the specified platform ({want})"
        )


class _Puller:
    def __init__(
        self, images: Images, client: RegistryClient, ref: Reference, progress: Progress
    ) -> None:
        self.images = images
        self.client = client
        self.ref = ref
        self.progress = progress
        self.abort = threading.Event()
        self.fetched = 0  # blobs this pull downloaded (vs. found in the store)
        self._count_lock = threading.Lock()

    def fetch_blob(self, desc: oci.Descriptor, *, report: bool = True) -> None:
        """Ensure `desc` is in the store, verified; fetch it at most once across processes."""
        from portique.image.registry.transport import TransportError

        store = self.images.store
        sid = short_id(desc.digest)
        if store.has(desc.digest):
            return
        with store.lock(desc.digest):
            if store.has(desc.digest):
                return  # another pull fetched it while we waited
            with self._count_lock:
                self.fetched += 1
            failures = 0
            resumed_mismatch = False
            while True:
                if self.abort.is_set():
                    raise _Abort
                try:
                    self._download(desc, sid, report)
                    faults.point("pull.blob-committed")
                    return
                except DigestMismatch:
                    # A kept partial from an earlier attempt may be what is wrong:
                    # the store discarded it; try once more from scratch.
                    if resumed_mismatch:
                        raise
                    resumed_mismatch = True
                except (
                    RegistryError,
                    TransportError,
                    ConnectionError,
                    TimeoutError,
                ) as exc:
                    if isinstance(exc, PortiqueError) and not _transient(exc):
                        raise
                    failures += 1
                    if failures >= BLOB_ATTEMPTS:
                        raise RegistryError(
                            f"blob {desc.digest}: download failed {failures} times: {exc}"
                        ) from None
                    self.abort.wait(min(0.2 * 2**failures, 5.0))

    def _download(self, desc: oci.Descriptor, sid: str, report: bool) -> None:
        store = self.images.store
        with store.ingest(desc.digest, desc.size) as writer:
            if writer.offset >= desc.size:
                return  # a complete partial: the commit on exit verifies it
            stream = self.client.fetch_blob(self.ref, desc.digest, offset=writer.offset)
            with stream:
                if stream.offset != writer.offset:
                    writer.restart()
                if stream.length is not None and stream.offset + stream.length != desc.size:
                    raise DigestMismatch(
                        f"blob {desc.digest}: registry sends "
                        f"{stream.offset + stream.length} bytes, manifest says {desc.size}"
                    )
                step = max(desc.size // 100, 512 << 10)
                next_report = writer.offset
                for chunk in stream:
                    if self.abort.is_set():
                        raise _Abort
                    writer.write(chunk)
                    faults.point("pull.blob-partial")
                    if report and writer.offset >= next_report:
                        self.progress(ProgressEvent(sid, "Downloading", writer.offset, desc.size))
                        next_report = writer.offset + step
            if report:
                self.progress(ProgressEvent(sid, "Verifying Checksum"))
        if report:
            self.progress(ProgressEvent(sid, "Download complete"))

    def layer(self, desc: oci.Descriptor, unpackers: ThreadPoolExecutor) -> Future[None]:
        """Download a layer, then hand it to the unpack pool; return the unpack future."""
        sid = short_id(desc.digest)
        if self.images.diff_id_of(desc.digest) is not None and self.images.store.has(desc.digest):
            self.progress(ProgressEvent(sid, "Already exists"))
            # unpack_layer is a no-op for a known layer (and repairs a lost snapshot).
            return unpackers.submit(self._unpack_known, desc)
        self.fetch_blob(desc)
        return unpackers.submit(self._unpack, desc, sid)

    def _unpack_known(self, desc: oci.Descriptor) -> None:
        self.images.unpack_layer(desc)

    def _unpack(self, desc: oci.Descriptor, sid: str) -> None:
        if self.abort.is_set():
            raise _Abort
        self.progress(ProgressEvent(sid, "Extracting", 0, desc.size))
        self.images.unpack_layer(desc)
        faults.point("pull.layer-unpacked")
        self.progress(ProgressEvent(sid, "Pull complete"))


def _transient(exc: PortiqueError) -> bool:
    from portique.image.registry.errors import RegistryNotFound, Unauthorized

    return isinstance(exc, RegistryError) and not isinstance(exc, (Unauthorized, RegistryNotFound))


def _check_layers(manifest: oci.Manifest) -> None:
    for desc in manifest.layers:
        oci.layer_compression(desc)  # raises on a non-layer media type
    if manifest.config.media_type not in oci.CONFIG_MEDIA_TYPES:
        raise oci.InvalidManifest(
            f"manifest.config.mediaType: {manifest.config.media_type[:200]!r} is not an image config"
        )
    if manifest.config.size > oci.MAX_CONFIG_SIZE:
        raise oci.InvalidManifest(f"manifest.config.size: {manifest.config.size} is too large")


def _run_layers(
    puller: _Puller,
    layers: list[oci.Descriptor],
    config: oci.Descriptor,
    check_config: Callable[[], None],
) -> None:
    """Fetch the config and the layers in parallel; each layer's unpack starts when its
    download ends. `check_config` runs as soon as the config is in: if it raises, the
    layer downloads stop at their next chunk (the config costs no extra round trip)."""
    n = len(layers)
    unpack_workers = max(1, min(n, os.cpu_count() or 2))
    with (
        ThreadPoolExecutor(min(n + 1, DOWNLOAD_WORKERS), thread_name_prefix="pull") as downloads,
        ThreadPoolExecutor(unpack_workers, thread_name_prefix="unpack") as unpackers,
    ):
        for desc in layers:
            if puller.images.diff_id_of(desc.digest) is None:
                puller.progress(ProgressEvent(short_id(desc.digest), "Pulling fs layer"))
        config_future = downloads.submit(puller.fetch_blob, config, report=False)
        pending: set[Future[Any]] = {config_future}
        pending |= {downloads.submit(puller.layer, desc, unpackers) for desc in layers}
        first_error: BaseException | None = None
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    exc = f.exception()
                    if exc is None and f is config_future:
                        try:
                            check_config()
                        except Exception as bad:  # reported like a failed download
                            exc = bad
                    if exc is not None:
                        if first_error is None and not isinstance(exc, _Abort):
                            first_error = exc
                        # Stop the other layers at their next chunk.
                        puller.abort.set()
                        continue
                    inner = f.result()
                    if isinstance(inner, Future):
                        pending.add(inner)
        except BaseException:
            # Ctrl-C: the pools' exit waits for running tasks; make them stop soon.
            puller.abort.set()
            raise
        if first_error is not None:
            raise first_error


def pull_image(
    images: Images,
    name: str,
    *,
    platform: str | None = None,
    progress: Progress | None = None,
    client: RegistryClient | None = None,
) -> PullResult:
    """Pull `name` into `images`; `platform` ("os/arch[/variant]") defaults to linux/amd64.

    With an explicit platform, a single-platform image of another platform is refused.
    """
    report = progress or _noop
    ref = parse_reference(name)
    if client is None:
        from portique.image.registry.client import RegistryClient

        client = RegistryClient()
    top_digest, manifest_bytes, manifest_digest, manifest = resolve_manifest(client, ref, platform)
    # Docker says this once the manifest resolved (not before a "not found").
    report(ProgressEvent("", f"Pulling from {ref.familiar_name()}"))
    _check_layers(manifest)
    faults.point("pull.manifest-resolved")
    tags = [ref.tagged()] if ref.tag is not None else []
    repo_digest = f"{ref.repository}@{top_digest}"
    try:
        existing = images.resolve(str(ref) if ref.digest else ref.tagged())
    except (NotFound, InvalidArgument):
        existing = None
    if existing is not None and existing.manifest_digest == manifest_digest:
        record = images.register(
            manifest_bytes,
            manifest_digest,
            _config_bytes(images, manifest),
            tags=tags,
            repo_digest=repo_digest,
        )
        return PullResult(record, ref, top_digest, manifest_digest, downloaded=False)
    puller = _Puller(images, client, ref, report)

    def check_config() -> None:
        config = oci.parse_image_config(_config_bytes(images, manifest))
        if len(config.diff_ids) != len(manifest.layers):
            raise oci.InvalidManifest(
                f"image {manifest_digest}: {len(manifest.layers)} layers but "
                f"{len(config.diff_ids)} diff_ids in its config"
            )
        _check_platform(config, ref, platform)

    # A layer listed twice is fetched and unpacked once.
    unique = list({d.digest: d for d in manifest.layers}.values())
    # What dead pulls left (lock files; partials beyond what is
    # worth resuming) goes first, so failed pulls cannot pile files up.
    images.store.sweep()
    with _journal(images, name, unique, manifest.config):
        _run_layers(puller, unique, manifest.config, check_config)
        report(ProgressEvent("", f"Digest: {top_digest}"))
        faults.point("pull.before-register")
        record = images.register(
            manifest_bytes,
            manifest_digest,
            _config_bytes(images, manifest),
            tags=tags,
            repo_digest=repo_digest,
        )
    return PullResult(record, ref, top_digest, manifest_digest, downloaded=True)


@contextmanager
def _journal(
    images: Images, name: str, layers: list[oci.Descriptor], config: oci.Descriptor
) -> Iterator[None]:
    """The pull's journal entry (portique/journal.py): the ingest files and unpack
    dirs it may leave if killed. Ended whatever the outcome otherwise: a failure
    removes its own files (partials are kept on purpose, for a resume)."""
    from portique import journal

    conn = journal.open_journal(images.root)
    try:
        resources: list[journal.Resource] = [
            {"type": "ingest", "digest": d.digest} for d in (config, *layers)
        ]
        resources += [{"type": "staging", "key": d.digest} for d in layers]
        op = journal.Operation.begin(conn, "pull", name, resources)
        try:
            yield
        finally:
            op.end()
    finally:
        conn.close()


def _config_bytes(images: Images, manifest: oci.Manifest) -> bytes:
    return images.store.read_bytes(manifest.config.digest, limit=oci.MAX_CONFIG_SIZE)


def pull(
    images: Images,
    ref: str,
    *,
    platform: str | None = None,
    progress: Progress | None = None,
    client: RegistryClient | None = None,
) -> ImageRecord:
    """Pull `ref` and return the registered image (see `pull_image`)."""
    return pull_image(images, ref, platform=platform, progress=progress, client=client).record


def push(
    images: Images,
    ref: str,
    *,
    dest: str | None = None,
    progress: Progress | None = None,
    client: RegistryClient | None = None,
) -> str:
    """Push a local image (see portique.image.push); return the manifest digest."""
    from portique.image.push import push_image

    return push_image(images, ref, dest=dest, progress=progress, client=client).digest


__all__ = [
    "Progress",
    "ProgressEvent",
    "PullResult",
    "pull",
    "pull_image",
    "push",
    "resolve_manifest",
]
