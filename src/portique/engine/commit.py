"""`commit` and `diff`: a container's changes, as an image or as a list.

    image_id = commit(eng, "web", repo="app", tag="v2", comment="fix", changes=["CMD [\"sh\"]"])
    changes(eng, "web") -> [{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]

`commit` is `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`
with the request body as `config` (a Config whose fields win over the
container's); `changes` is `GET /containers/{id}/changes`. Both read the
container's overlay upper dir directly (mounted or not), leaving out the
mount points the runtime made there (RUNTIME_POINTS, what Docker keeps in a
container's init layer). A running container is frozen while its upper dir
is read, unless `pause` is false, as Docker does.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["RUNTIME_POINTS", "changes", "commit"]

# Relative to the root: made in the upper dir by the runtime (mount points of
# /proc, /sys, /dev and the bind-mounted /etc files), not by the container.
RUNTIME_POINTS: Final = frozenset(
    {"proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", ".dockerenv"}
)

# The Config fields an image keeps (Docker's container.Config, as `docker
# commit` writes it into the image).
_IMAGE_FIELDS: Final = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
    "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
    "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels",
    "StopSignal", "StopTimeout", "Shell",
)  # fmt: skip


def changes(eng: Engine, container: str) -> list[dict[str, Any]]:
    """`GET /containers/{id}/changes`: [{"Path", "Kind"}], Kind 0 modified, 1 added,
    2 deleted, in Docker's order."""
    from portique.engine import containers
    from portique.image.changes import changes as upper_changes

    row = containers.get(eng, container)
    image = eng.images.get(row.image_id)
    upper = eng.paths(row.id).dir / "upper"
    lowers = list(reversed(image.snapshot_dirs))
    return [
        {"Path": path, "Kind": kind} for path, kind in upper_changes(upper, lowers, RUNTIME_POINTS)
    ]


def commit(
    eng: Engine,
    container: str,
    *,
    repo: str = "",
    tag: str = "",
    comment: str = "",
    author: str = "",
    pause: bool = True,
    changes: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> str:
    """`POST /commit`: a new image of the container's image plus its changes
    (one layer; none when nothing changed, as Docker's empty layer), its
    config the container's with `config` over it and the Dockerfile-like
    `changes` (CMD, ENV, LABEL, ...) applied; tagged `repo:tag` if a repo is
    given. Returns the image id."""
    from portique.engine import containers
    from portique.engine.state import Status
    from portique.image.importer import parse_changes
    from portique.image.snapshots import has_changes

    ref = _reference(repo, tag)
    row = containers.get(eng, container)
    imgs = eng.images
    image = imgs.get(row.image_id)
    container_config = dict(row.config.get("Config") or {})
    base = {k: container_config[k] for k in _IMAGE_FIELDS if k in container_config}
    if config:
        # The request's Config wins; the container's fills what it leaves empty.
        given = {
            k: v for k, v in config.items() if k in _IMAGE_FIELDS and v not in (None, "", [], {})
        }
        base.update(given)
    new_config = parse_changes(changes, base=base)
    upper = eng.paths(row.id).dir / "upper"
    frozen = pause and row.status == Status.RUNNING
    from portique.engine.lifecycle import open_runtime

    rt = open_runtime(eng.paths(row.id)) if frozen else None
    from portique.engine import events

    if rt is not None:
        rt.pause(row.id)
        events.container(eng, row, "pause")
    try:
        layer = None
        if has_changes(upper, RUNTIME_POINTS):
            layer = imgs.layer_from_dir(upper, RUNTIME_POINTS)
    finally:
        if rt is not None:
            rt.resume(row.id)
    created = _now()
    old = image.config
    history = [h for h in old.get("history") or [] if isinstance(h, dict)]
    entry: dict[str, Any] = {
        "created": created,
        "created_by": " ".join(str(c) for c in container_config.get("Cmd") or []),
    }
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    if layer is None:
        entry["empty_layer"] = True
    doc: dict[str, Any] = {
        "architecture": old.get("architecture") or image.architecture,
        "os": old.get("os") or image.os,
        "config": new_config,
        "container": row.id,
        "container_config": copy.deepcopy(container_config),
        "created": created,
        "history": [*history, entry],
        "rootfs": {
            "type": "layers",
            "diff_ids": [*image.layers, *([layer[1]] if layer is not None else [])],
        },
    }
    if old.get("variant"):
        doc["variant"] = old["variant"]
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    image_id = _register(eng, image, doc, layer, ref)
    from portique.engine.images import familiar

    # dockerd: the new tag's `tag`, then the container's `commit`.
    image_ref = familiar(ref) if ref else ""
    if ref:
        events.image(
            eng, image_id, image_ref, "tag", events.image_labels(imgs_record(eng, image_id))
        )
    events.container(eng, row, "commit", comment=comment, imageID=image_id, imageRef=image_ref)
    if frozen:
        # Thawed as soon as the layer was read; dockerd tells it after the commit.
        events.container(eng, row, "unpause")
    return image_id


def imgs_record(eng: Engine, image_id: str) -> Any:
    """The image record of `image_id`, None when it is gone."""
    try:
        return eng.images.resolve(image_id)
    except Exception:
        return None


def _register(eng: Engine, image: Any, doc: dict[str, Any], layer: Any, ref: str | None) -> str:
    from portique.oci import image as oci

    imgs = eng.images
    manifest = json.loads(imgs.store.read_bytes(image.manifest_digest))
    layers = list(manifest.get("layers") or [])
    if layer is not None:
        layers.append(layer[0].to_json())
    config_bytes = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    config_digest = imgs.store.write_bytes(config_bytes)
    manifest_bytes = json.dumps(
        oci.new_manifest(config_digest, len(config_bytes), layers),
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    manifest_digest = imgs.store.write_bytes(manifest_bytes)
    record = imgs.register(
        manifest_bytes, manifest_digest, config_bytes, tags=[ref] if ref else [], parent=image.id
    )
    return record.id


def _reference(repo: str, tag: str) -> str | None:
    """`repo:tag` checked as Docker does; None without a repository."""
    from portique.oci.reference import parse_reference

    if not repo:
        if tag:
            raise InvalidArgument("a tag needs a repository: give REPOSITORY[:TAG]")
        return None
    ref = parse_reference(f"{repo}:{tag}" if tag else repo)
    if ref.digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    return ref.tagged()


def _now() -> str:
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 1_000_000_000)) + (
        f".{now % 1_000_000_000:09d}Z"
    )
