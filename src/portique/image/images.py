"""The image facade the rest of the engine uses: store, snapshots, metadata.

    imgs = Images(root)                     # root: PORTIQUE_ROOT (blobs/, ingest/, snapshots/, portique.db)
    imgs.store                              # ContentStore: has/path/open/size/delete/ingest/lock/write_bytes
    imgs.unpack_layer(desc) -> Path         # once per blob, locked across processes
    imgs.unpack_layers(descs) -> [Path]     # in parallel, order kept
    imgs.register(manifest, digest, config, tags=[...], repo_digest=None, parent=None) -> ImageRecord
    imgs.resolve(name_or_id) / get(id) / exists(name) / list(all=, dangling=)
    imgs.tag(source, target); imgs.remove(name, force=, prune_children=) -> [("Untagged"|"Deleted", x)]
    imgs.prune(all=) -> (ids, bytes); imgs.disk_usage() -> {images, active, size, reclaimable, blobs}
    imgs.add_user(image_id, container_id) / remove_user(...)   # rmi refuses used images
    imgs.lowerdirs(rec); imgs.mount_rootfs(rec, container_dir) -> rootfs; imgs.unmount_rootfs(dir)
    imgs.layer_from_dir(upper) -> (Descriptor, diff_id)         # commit/build

Snapshots are keyed by the layer's diff_id (what the tar unpacks to), not by
chain id: an overlay lower dir holds only its own layer's changes, so the same
diff_id unpacks to the same directory whatever sits below it. Chain ids are
still computed (and stored) for `image inspect` and for the engine's use.
Each compressed blob is mapped to its diff_id once unpacked (layer_blobs), so
a layer pulled again, or in another compression, is never unpacked twice.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from portique import faults, journal
from portique.errors import Conflict, InvalidArgument, NotFound
from portique.image.metadata import ImageDB, ImageRow, LayerRow, NewImage, like_escape
from portique.image.snapshots import (
    STALE_SECONDS,
    Snapshots,
    mount_overlay,
    remove_tree,
    unmount_overlay,
    write_diff_tar,
)
from portique.image.store import ContentStore
from portique.oci.digest import DigestMismatch, parse_digest, sha256_digest
from portique.oci.reference import parse_reference
from portique.oci.value import value

if TYPE_CHECKING:
    from portique.oci.image import Descriptor

_HEX = frozenset("0123456789abcdef")
_MAX_PARENT_CHAIN = 1000


class LayerDesc(Protocol):
    """What unpacking needs of a layer descriptor (portique.oci.image.Descriptor fits)."""

    @property
    def digest(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...


@value
class ImageRecord:
    id: str  # sha256:<config digest hex>
    repo_tags: list[str]  # familiar: "busybox:latest", "127.0.0.1:5000/busybox:latest"
    repo_digests: list[str]  # familiar: "busybox@sha256:..."
    manifest_digest: str
    config: dict[str, Any]
    created: str
    size: int
    layers: list[str]  # diff_ids, bottom first
    chain_ids: list[str]
    snapshot_dirs: list[Path]  # bottom first
    architecture: str
    os: str
    manifest_media_type: str = ""
    parent: str | None = None

    @property
    def short_id(self) -> str:
        return self.id.partition(":")[2][:12]


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


def _familiar(ref: str) -> str:
    try:
        return parse_reference(ref).familiar()
    except InvalidArgument:
        return ref


def _normal_tag(ref: str) -> str:
    r = parse_reference(ref)
    if r.digest is not None:
        raise InvalidArgument(f"cannot tag with a digest reference: {ref}")
    return r.tagged()


class Images:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = ContentStore(root)
        self.snapshots = Snapshots(root)
        self.db = ImageDB(root)
        self._maybe_clean()

    def _maybe_clean(self) -> None:
        """Sweep crash leftovers at most every half hour (one stat per open otherwise).

        The time of the last sweep is the mtime of snapshots/empty: nothing is
        ever written into that directory, so only we set it.
        """
        now = time.time()
        try:
            if now - self.snapshots.empty.stat().st_mtime < STALE_SECONDS / 2:
                return
            os.utime(self.snapshots.empty, (now, now))
        except OSError:
            return
        self.clean_stale()

    def close(self) -> None:
        self.db.close()

    # -- layers ----------------------------------------------------------

    def _known_layer(self, blob_digest: str) -> Path | None:
        row = self.db.layer_for_blob(blob_digest)
        if row is None:
            return None
        path = self.snapshots.path(row.id)
        return path if path.is_dir() else None

    def unpack_layer(self, desc: LayerDesc) -> Path:
        """Unpack one layer blob (already in the store) once; return its snapshot dir."""
        digest = parse_digest(desc.digest)
        known = self._known_layer(digest)
        if known is not None:
            return known
        from portique.image.unpack import InvalidLayer, unpack  # only for a layer to unpack

        with self.snapshots.lock(digest):
            known = self._known_layer(digest)
            if known is not None:
                return known
            with self.snapshots.staging(digest) as (tmp, fd):
                try:
                    with self.store.open(digest) as f:
                        result = unpack(f, fd)
                except InvalidLayer as exc:
                    raise InvalidLayer(f"layer {digest}: {exc.message}") from None
                faults.point("unpack.staged")
                with self.db.write() as c:
                    row = ImageDB.layer_by_diff_id(c, result.diff_id)
                    if row is None:
                        n = ImageDB.insert_layer(c, result.diff_id, result.size)
                        path = self.snapshots.install(tmp, n)
                        faults.point("unpack.renamed")
                    elif not self.snapshots.path(row.id).is_dir():
                        # The row outlived its directory (deleted by hand): repair.
                        path = self.snapshots.install(tmp, row.id)
                    else:  # another blob (other compression) already gave this content
                        path = self.snapshots.path(row.id)
                    ImageDB.map_blob(c, digest, result.diff_id, desc.media_type, desc.size)
            return path

    def unpack_layers(self, descs: Sequence[LayerDesc]) -> list[Path]:
        """Unpack several layers in parallel (each is its own dir); keep their order."""
        known = [self._known_layer(parse_digest(d.digest)) for d in descs]
        if sum(p is None for p in known) <= 1:  # no thread for what is unpacked already
            return [p or self.unpack_layer(d) for p, d in zip(known, descs, strict=True)]
        from concurrent.futures import ThreadPoolExecutor

        workers = min(len(descs), max(2, os.cpu_count() or 2))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unpack") as pool:
            return list(pool.map(self.unpack_layer, descs))

    def diff_id_of(self, blob_digest: str) -> str | None:
        row = self.db.layer_for_blob(blob_digest)
        return row.diff_id if row else None

    # -- registration ------------------------------------------------------

    def register(
        self,
        manifest_bytes: bytes,
        manifest_digest: str,
        config_bytes: bytes,
        *,
        tags: Sequence[str],
        repo_digest: str | None = None,
        parent: str | None = None,
    ) -> ImageRecord:
        """Record an image whose blobs are in the store; unpack missing layers."""
        from portique.oci import image as oci

        manifest = oci.parse_manifest(manifest_bytes)
        if not isinstance(manifest, oci.Manifest):
            raise InvalidArgument(f"{manifest_digest} is an index, not an image manifest")
        config = oci.parse_image_config(config_bytes)
        config_digest = sha256_digest(config_bytes)
        if manifest.config.digest != config_digest:
            raise DigestMismatch(
                f"config of {manifest_digest} hashes to {config_digest}, "
                f"manifest says {manifest.config.digest}"
            )
        actual = sha256_digest(manifest_bytes)
        if parse_digest(manifest_digest) != actual:
            raise DigestMismatch(f"manifest {manifest_digest}: content hashes to {actual}")
        if len(manifest.layers) != len(config.diff_ids):
            raise InvalidArgument(
                f"image {config_digest}: manifest has {len(manifest.layers)} layers, "
                f"config has {len(config.diff_ids)} diff_ids"
            )
        self.store.write_bytes(manifest_bytes, manifest_digest)
        self.store.write_bytes(config_bytes, config_digest)
        norm_tags = [_normal_tag(t) for t in tags]
        digest_ref = None
        if repo_digest is not None:
            repo, _, d = repo_digest.partition("@")
            digest_ref = (
                f"{parse_reference(repo, default_tag=None).repository}@{d or manifest_digest}"
            )
        new = NewImage(
            id=config_digest,
            manifest_digest=manifest_digest,
            manifest_media_type=manifest.media_type,
            # Re-serialised: the blob may be in any JSON encoding (UTF-16...);
            # the original bytes stay in the store for push and save.
            config_json=json.dumps(json.loads(config_bytes), separators=(",", ":")),
            created=config.created or "",
            architecture=config.architecture,
            os=config.os,
            diff_ids=list(config.diff_ids),
            chain_ids=chain_ids(config.diff_ids),
            blobs=[manifest_digest, config_digest, *(d.digest for d in manifest.layers)],
            parent=parent,
        )
        # A concurrent rmi may delete a layer between unpack and commit: then
        # the check below fails and we unpack again (bounded).
        for _attempt in range(3):
            self.unpack_layers(manifest.layers)
            for i, desc in enumerate(manifest.layers):
                got = self.diff_id_of(desc.digest)
                if got is not None and got != config.diff_ids[i]:
                    raise DigestMismatch(
                        f"layer {desc.digest} unpacks to {got}, config says {config.diff_ids[i]}"
                    )
            with self.db.write() as c:
                if any(ImageDB.layer_by_diff_id(c, d) is None for d in config.diff_ids):
                    continue
                ImageDB.insert_image(c, new)
                for t in norm_tags:
                    ImageDB.set_tag(c, t, new.id)
                if digest_ref is not None:
                    ImageDB.set_digest(c, digest_ref, new.id)
            break
        else:
            raise Conflict(f"image {config_digest}: layers removed while registering, try again")
        return self.get(new.id)

    # -- lookup ------------------------------------------------------------

    def _record(self, row: ImageRow) -> ImageRecord:
        return ImageRecord(
            id=row.id,
            repo_tags=[_familiar(t) for t in row.tags],
            repo_digests=[_familiar(d) for d in row.digests],
            manifest_digest=row.manifest_digest,
            config=row.config,
            created=row.created,
            size=row.size,
            layers=row.diff_ids,
            chain_ids=row.chain_ids,
            snapshot_dirs=[self.snapshots.path(n) for n in row.layer_ids],
            architecture=row.architecture,
            os=row.os,
            manifest_media_type=row.manifest_media_type,
            parent=row.parent,
        )

    def get(self, image_id: str) -> ImageRecord:
        row = self.db.get(image_id)
        if row is None:
            raise NotFound(f"no such image: {image_id}")
        return self._record(row)

    def _resolve_id(self, name: str) -> str:
        s = name.strip()
        hexpart = s[len("sha256:") :] if s.startswith("sha256:") else s
        is_hex = bool(hexpart) and set(hexpart) <= _HEX
        if is_hex and len(hexpart) == 64 and self.db.get("sha256:" + hexpart) is not None:
            return "sha256:" + hexpart
        if not s.startswith("sha256:") and not (is_hex and len(hexpart) == 64):
            try:
                ref = parse_reference(s)
            except InvalidArgument:
                ref = None
            if ref is not None:
                found = None
                if ref.digest is not None:
                    found = self.db.by_digest_ref(f"{ref.repository}@{ref.digest}")
                    if found is None:
                        found = self.db.by_manifest(ref.repository, ref.digest)
                else:
                    found = self.db.by_tag(ref.tagged())
                if found is not None:
                    return found
        if is_hex and len(hexpart) <= 64:
            ids = self.db.by_id_prefix(hexpart)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise InvalidArgument(f"ambiguous image id prefix: {name}")
        raise NotFound(f"no such image: {name}")

    def resolve(self, name_or_id: str) -> ImageRecord:
        return self.get(self._resolve_id(name_or_id))

    def exists(self, name_or_id: str) -> bool:
        try:
            self._resolve_id(name_or_id)
        except (NotFound, InvalidArgument):
            return False
        return True

    def list(self, *, all: bool = False, dangling: bool | None = None) -> list[ImageRecord]:
        out = []
        for image_id in self.db.image_ids():
            row = self.db.get(image_id)
            if row is None:
                continue
            untagged = not row.tags
            if dangling is not None and untagged != dangling:
                continue
            if not all and untagged and not row.digests:
                # Docker hides untagged intermediate (parent) images unless -a.
                with self.db.read() as c:
                    if ImageDB.children(c, image_id):
                        continue
            out.append(self._record(row))
        return out

    # -- tags ----------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        image_id = self._resolve_id(source)
        ref = _normal_tag(target)
        with self.db.write() as c:
            ImageDB.set_tag(c, ref, image_id)

    # -- users -----------------------------------------------------------------

    def add_user(self, image_id: str, container_id: str) -> None:
        """Record that `container_id` uses the image (rmi then needs force)."""
        try:
            self.db.add_user(image_id, container_id)
        except sqlite3.IntegrityError:  # the foreign key: no such image (or just removed)
            raise NotFound(f"no such image: {image_id}") from None

    def remove_user(self, image_id: str, container_id: str) -> None:
        self.db.remove_user(image_id, container_id)

    # -- removal -----------------------------------------------------------------

    def remove(
        self, name_or_id: str, *, force: bool = False, prune_children: bool = True
    ) -> builtins.list[tuple[str, str]]:
        """`rmi`: untag, then delete what no reference, container or child needs.

        Named by reference: only that reference goes, unless it was the last
        one. Named by id: every reference goes (force needed when they span
        several repositories). An image a container uses is never deleted,
        even with force (its snapshots are that container's lower dirs): the
        removal fails and nothing changes.
        """
        image_id = self._resolve_id(name_or_id)
        by_id = self._names_id(name_or_id, image_id)
        short = image_id.partition(":")[2][:12]
        out: builtins.list[tuple[str, str]] = []
        doomed: builtins.list[tuple[builtins.list[LayerRow], builtins.list[str]]] = []
        journal.ensure(self.db.conn)
        with self.db.write() as c:
            tags, digests = ImageDB.refs(c, image_id)
            users = ImageDB.users(c, image_id)
            key = None
            if not by_id:
                ref = parse_reference(name_or_id.strip())
                key = f"{ref.repository}@{ref.digest}" if ref.digest else ref.tagged()
                if key not in tags and key not in digests:
                    key = None
            if key is not None:
                _untag(c, key, out)
                tags, digests = ImageDB.refs(c, image_id)
                if tags or digests:
                    return out
                if users:
                    # Even forced: an image whose last name goes is deleted, and
                    # its snapshots are this container's lower dirs. So `rmi -f`
                    # either removes the image or fails (rolled back), never
                    # reports success while keeping it.
                    how = "cannot be forced" if force else "must force"
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name_or_id}" ({how}) - '
                        f"container {users[0][:12]} is using its referenced image {short}",
                        hint="remove that container first",
                    )
            else:
                if users:
                    how = "cannot be forced" if force else "must be forced"
                    raise Conflict(
                        f"conflict: unable to delete {short} ({how}) - "
                        f"image is being used by container {users[0][:12]}",
                        hint="remove that container first",
                    )
                if not force and not _single_reference(tags, digests):
                    raise Conflict(
                        f"conflict: unable to delete {short} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
            if ImageDB.children(c, image_id):
                if key is not None:
                    # Its last name went; images built on it keep it, untagged
                    # (Docker says nothing more when a name was given).
                    return out
                raise Conflict(
                    f"conflict: unable to delete {short} (cannot be forced) -"
                    " image has dependent child images"
                )
            for t in tags:
                _untag(c, t, out)
            for d in ImageDB.refs(c, image_id)[1]:
                _untag(c, d, out)
            current: str | None = image_id
            for _ in range(_MAX_PARENT_CHAIN):
                if current is None:
                    break
                parent = ImageDB.parent(c, current)
                doomed.append(ImageDB.delete_image(c, current))
                out.append(("Deleted", current))
                # Untagged parents nothing else needs go too (Docker's default, --no-prune).
                if (
                    not prune_children
                    or parent is None
                    or any(ImageDB.refs(c, parent))
                    or ImageDB.users(c, parent)
                    or ImageDB.children(c, parent)
                ):
                    break
                current = parent
            entry = journal_purge(c, image_id, doomed)
        self._purge(doomed, entry)
        return out

    def _names_id(self, name: str, image_id: str) -> bool:
        """Did the user name the image by (a prefix of) its id rather than a reference?"""
        s = name.strip()
        hexpart = s[len("sha256:") :] if s.startswith("sha256:") else s
        if not hexpart or not set(hexpart) <= _HEX or not image_id.startswith("sha256:" + hexpart):
            return False
        if s.startswith("sha256:") or len(hexpart) == 64:
            return True
        try:
            ref = parse_reference(s)
        except InvalidArgument:
            return True
        return self.db.by_tag(ref.tagged()) != image_id

    def _purge(
        self, doomed: Sequence[tuple[Sequence[LayerRow], Sequence[str]]], entry: int | None
    ) -> int:
        """Delete the files of layers and blobs whose rows are already gone; then
        `entry`, the journal entry naming those blobs (_journal_purge)."""
        faults.point("rmi.rows-deleted")
        reclaimed = 0
        for layers, blobs in doomed:
            for layer in layers:
                reclaimed += layer.size
                self.snapshots.remove(layer.id)
            for digest in blobs:
                with contextlib.suppress(NotFound):
                    reclaimed += self.store.size(digest)
                self.store.delete(digest)
        if entry is not None:
            journal.forget(self.db.conn, entry)
        return reclaimed

    def prune(self, *, all: bool = False) -> tuple[builtins.list[str], int]:
        """`image prune`: dangling (or, with all, unused) images; then stale garbage."""
        deleted: builtins.list[str] = []
        doomed: builtins.list[tuple[builtins.list[LayerRow], builtins.list[str]]] = []
        journal.ensure(self.db.conn)
        with self.db.write() as c:
            for (image_id,) in c.execute("SELECT id FROM images ORDER BY added DESC").fetchall():
                if ImageDB.users(c, image_id) or ImageDB.children(c, image_id):
                    continue
                tagged = c.execute(
                    "SELECT 1 FROM image_tags WHERE image_id = ? LIMIT 1", (image_id,)
                ).fetchone()
                if tagged and not all:
                    continue
                c.execute("DELETE FROM image_tags WHERE image_id = ?", (image_id,))
                c.execute("DELETE FROM image_digests WHERE image_id = ?", (image_id,))
                doomed.append(ImageDB.delete_image(c, image_id))
                deleted.append(image_id)
            if all:
                # Layers and blobs no image uses (pulls that never registered,
                # build-cache steps): only with all, as they may serve the cache.
                orphans = ImageDB.unreferenced_layers(c, time.time() - STALE_SECONDS)
                for layer in orphans:
                    c.execute("DELETE FROM layers WHERE id = ?", (layer.id,))
                doomed.append((orphans, self._orphan_blobs(c)))
            entry = journal_purge(c, "prune", doomed)
        reclaimed = self._purge(doomed, entry)
        self.clean_stale()
        return deleted, reclaimed

    def needed(self, also: set[str] | None = None) -> set[str]:
        """Images something needs (image/gc.py)."""
        from portique.image.gc import needed

        return needed(self, also)

    def remove_unneeded(self, ids: Sequence[str]) -> tuple[builtins.list[str], int]:
        """Delete those of `ids` nothing needs (image/gc.py); (deleted, bytes)."""
        from portique.image.gc import remove_unneeded

        return remove_unneeded(self, ids)

    def _orphan_blobs(self, c: sqlite3.Connection) -> builtins.list[str]:
        """Blobs no image names, older than the grace period (a pull in progress
        has not registered its image yet); their layer_blobs rows go too."""
        used = {r[0] for r in c.execute("SELECT digest FROM image_blobs")}
        limit = time.time() - STALE_SECONDS
        out = []
        for digest in self.store.digests():
            if digest in used:
                continue
            try:
                if self.store.path(digest).stat().st_mtime >= limit:
                    continue
            except FileNotFoundError:
                continue
            c.execute("DELETE FROM layer_blobs WHERE blob_digest = ?", (digest,))
            out.append(digest)
        return out

    def clean_stale(self, max_age: float = STALE_SECONDS) -> None:
        """Remove what crashed or abandoned operations left behind, once old."""
        self.store.clean_stale()
        self.snapshots.clean_stale(self.db.layer_ids(), max_age)

    def sweep_abandoned(self, *, keep_partials: bool = True) -> None:
        """Remove, whatever their age, what dead processes left: ingest and unpack
        files nobody holds a lock on (partials of downloads stay for a resume
        unless not `keep_partials`), numbered snapshot dirs no layer row names."""
        self.store.sweep(keep_partials=keep_partials)
        self.snapshots.sweep_abandoned()
        if not self.snapshots.orphans(self.db.layer_ids()):
            return
        trash: builtins.list[Path] = []
        with contextlib.ExitStack() as stack:
            key = f"del-{os.urandom(8).hex()}"
            # Inside a write transaction no unpack is between its rename and its
            # commit (both happen in one), so a dir no row names now is garbage;
            # it is renamed away before the lock goes, since its id may be given
            # to the next layer.
            with self.db.write() as c:
                known = {r[0] for r in c.execute("SELECT id FROM layers")}
                orphans = self.snapshots.orphans(known)
                if orphans:
                    stack.enter_context(self.snapshots.lock(key))
                for i, n in enumerate(orphans):
                    dest = self.snapshots.dir / f"tmp-{key}.{i}"
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(self.snapshots.path(n), dest)
                        trash.append(dest)
            for dest in trash:
                remove_tree(dest)

    # -- rootfs ------------------------------------------------------------------

    def lowerdirs(self, image: ImageRecord) -> builtins.list[Path]:
        """Snapshot dirs topmost first, as overlay's lowerdir= wants them."""
        return list(reversed(image.snapshot_dirs))

    def mount_rootfs(self, image: ImageRecord, container_dir: Path) -> Path:
        """Mount container_dir/rootfs (overlay: the image's snapshots + container_dir/upper).

        Idempotent: an already mounted rootfs is returned as it is.
        """
        from portique.linux.mount import is_mountpoint

        rootfs = container_dir / "rootfs"
        if rootfs.is_dir() and is_mountpoint(rootfs):
            return rootfs
        lowers = self.lowerdirs(image) or [self.snapshots.empty]
        for p in lowers:
            if not p.is_dir():
                raise NotFound(f"snapshot {p} of image {image.short_id} is missing")
        return mount_overlay(self.snapshots.dir, lowers, container_dir)

    def unmount_rootfs(self, container_dir: Path) -> None:
        unmount_overlay(container_dir)

    def disk_usage(self) -> dict[str, int]:
        """For `system df`: images, active (used by containers), size and reclaimable
        (bytes of unpacked layers), blobs (bytes of compressed blobs kept for push/save)."""
        usage = self.db.usage()
        blobs = 0
        for digest in self.store.digests():
            with contextlib.suppress(NotFound):
                blobs += self.store.size(digest)
        usage["blobs"] = blobs
        return usage

    # -- layers from containers ------------------------------------------------------

    def layer_from_dir(
        self, upper: Path, skip: frozenset[str] = frozenset()
    ) -> tuple[Descriptor, str]:
        """Store an overlay upper dir as a gzip OCI layer; return (descriptor, diff_id).

        Used by `commit` and `build`. The tar is deterministic (see
        snapshots.write_diff_tar, which also says what `skip` leaves out) and
        so is the gzip stream (no name, mtime 0).
        """
        from portique.image.compression import GzipSink
        from portique.oci.image import MEDIA_TYPE_OCI_LAYER_GZIP, Descriptor

        with self.store.new_blob() as blob:
            sink = GzipSink(blob)
            write_diff_tar(upper, sink, skip)
            sink.close()
        desc = Descriptor(media_type=MEDIA_TYPE_OCI_LAYER_GZIP, digest=blob.digest, size=blob.size)
        return desc, sink.diff_id


def journal_purge(
    c: sqlite3.Connection, subject: str, doomed: Sequence[tuple[Sequence[LayerRow], Sequence[str]]]
) -> int | None:
    """A journal entry naming the blobs whose rows go in transaction `c`: killed
    before `_purge` deleted them, a removal would leave files no row names and
    no later command deletes (orphan snapshot dirs are swept; orphan blobs only
    a day later). Recovery deletes each unless an image uses it again."""
    blobs = sorted({d for _, digests in doomed for d in digests})
    if not blobs:
        return None
    return journal.insert(c, "rmi", subject, [{"type": "blob", "digest": d} for d in blobs])


def _single_reference(tags: Sequence[str], digests: Sequence[str]) -> bool:
    """Docker's rule for `rmi ID` without force: it untags everything only when
    the image has at most one tag and its digest references are all of one
    repository (that tag's); otherwise "referenced in multiple repositories"."""
    if len(tags) > 1:
        return False
    repos = {d.partition("@")[0] for d in digests} | {t.rpartition(":")[0] for t in tags}
    return len(repos) <= 1


def _untag(c: sqlite3.Connection, ref: str, out: builtins.list[tuple[str, str]]) -> None:
    if "@" in ref:
        c.execute("DELETE FROM image_digests WHERE ref = ?", (ref,))
        out.append(("Untagged", _familiar(ref)))
        return
    c.execute("DELETE FROM image_tags WHERE ref = ?", (ref,))
    out.append(("Untagged", _familiar(ref)))
    repo = like_escape(ref.rpartition(":")[0])
    # The last tag of a repository takes that repository's digests along (as Docker).
    if c.execute(
        "SELECT 1 FROM image_tags WHERE ref LIKE ? ESCAPE '\\'", (repo + ":%",)
    ).fetchone():
        return
    for (d,) in c.execute(
        "SELECT ref FROM image_digests WHERE ref LIKE ? ESCAPE '\\'", (repo + "@%",)
    ).fetchall():
        c.execute("DELETE FROM image_digests WHERE ref = ?", (d,))
        out.append(("Untagged", _familiar(d)))


__all__ = ["ImageRecord", "Images", "LayerDesc", "chain_ids"]
