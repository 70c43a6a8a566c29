"""The image operations behind the verbs (`images`, `image inspect`, `history`,
`rmi`, `image prune`, `tag`, `pull`, `load`, `import`, `save`, `push`, `build`),
in Docker's shapes, for every face.

The image store (image/images.py) keeps blobs, snapshots and references;
this module adds what the engine owes on top: the crash recovery of the
operations that write (engine/recovery.py), Docker's filters map, the API's
list and inspect JSON, and a missing image named by the user as
NoSuchObject("image", ref).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from portique.engine import filters as flt
from portique.errors import InvalidArgument, NoSuchObject, NotFound
from portique.oci.value import value

if TYPE_CHECKING:
    from portique.build.builder import BuildOptions
    from portique.engine.engine import Engine
    from portique.image.images import ImageRecord
    from portique.image.load import LoadedImage
    from portique.image.pull import PullResult

LIST_FILTERS = ("dangling", "reference", "label", "before", "since", "until")
PRUNE_FILTERS = ("until", "label", "label!")

__all__ = [
    "HistoryEntry",
    "build",
    "build_context",
    "created_timestamp",
    "familiar",
    "history",
    "inspect",
    "inspect_record",
    "list_images",
    "load",
    "parse_until",
    "prune",
    "pull",
    "remove",
    "resolve",
    "summary",
    "tag",
]


def resolve(eng: Engine, ref: str) -> ImageRecord:
    """The image `ref` names (name, id or id prefix); NoSuchObject when none."""
    try:
        return eng.images.resolve(ref)
    except NotFound:
        raise NoSuchObject("image", ref) from None


# ---- list ------------------------------------------------------------------------


def list_images(
    eng: Engine, *, all: bool = False, filters: flt.Filters | None = None
) -> list[dict[str, Any]]:
    """`GET /images/json`: Docker's image summaries, newest first. With a
    `reference` filter, RepoTags keeps the matching tags only."""
    wanted = flt.check(filters, LIST_FILTERS)
    for v in wanted.get("dangling", []):
        flt.flag("dangling", v)
    cutoffs = [parse_until(v) for v in wanted.get("until", [])]
    imgs = eng.images
    before = [_created(resolve(eng, r)) for r in wanted.get("before", [])]
    since = [_created(resolve(eng, r)) for r in wanted.get("since", [])]
    records = []
    for r in imgs.list(all=all):
        mine = _created(r)
        if any(flt.flag("dangling", v) != (not r.repo_tags) for v in wanted.get("dangling", [])):
            continue
        refs = wanted.get("reference")
        if refs and not any(_glob_tag(t, p) for t in r.repo_tags for p in refs):
            continue
        if not flt.labels_match(_labels(r), wanted.get("label", [])):
            continue
        if any(mine >= c for c in cutoffs) or any(mine >= b for b in before):
            continue
        if any(mine <= s for s in since):
            continue
        records.append(r)
    records.sort(key=_created, reverse=True)
    return [summary(r, wanted.get("reference", ())) for r in records]


def summary(r: ImageRecord, references: Sequence[str] = ()) -> dict[str, Any]:
    """Docker's ImageSummary."""
    tags = [
        familiar(t)
        for t in r.repo_tags
        if not references or any(_glob_tag(t, p) for p in references)
    ]
    return {
        "Id": r.id,
        "ParentId": r.parent or "",
        "RepoTags": tags,
        "RepoDigests": [familiar(d) for d in r.repo_digests],
        "Created": int(_created(r)),
        "Size": r.size,
        "SharedSize": -1,
        "VirtualSize": r.size,
        "Labels": _labels(r) or None,
        "Containers": -1,
    }


def _labels(r: ImageRecord) -> dict[str, str]:
    labels = (r.config.get("config") or {}).get("Labels") or {}
    return dict(labels) if isinstance(labels, dict) else {}


def _created(r: ImageRecord) -> float:
    return created_timestamp(getattr(r, "created", None))


def created_timestamp(value: Any) -> float:
    """An image's created time as a Unix timestamp (the record may hold either form)."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 parses at most 6 fractional digits; Go writes 9.
    head, dot, frac = text.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        tz = frac[len(digits) :]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def parse_until(value: str, now: float | None = None) -> float:
    """Docker's `until=`: a Go duration before now ("24h", "1h30m"), or a timestamp."""
    from portique.duration import InvalidDuration, parse_seconds

    now = time.time() if now is None else now
    try:
        if value != "0":  # Docker's rule: "0" is the epoch, not a duration
            return now - parse_seconds(value)
    except InvalidDuration:
        pass
    try:
        return float(value)  # Unix seconds
    except ValueError:
        pass
    ts = created_timestamp(value if "T" in value else value + "T00:00:00Z")
    if ts <= 0:
        raise InvalidArgument(f"invalid filter 'until={value}': expected a duration or a timestamp")
    return ts


def familiar(name: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`."""
    from portique.oci.reference import parse_reference

    try:
        return parse_reference(name).familiar()
    except InvalidArgument:
        return name


def _glob_tag(tag: str, pattern: str) -> bool:
    """Docker's reference filter: a glob against `repo:tag`, or against `repo` alone."""
    from fnmatch import fnmatchcase

    short = familiar(tag)
    return fnmatchcase(short, pattern) or fnmatchcase(short.rsplit(":", 1)[0], pattern)


# ---- inspect, history ------------------------------------------------------------------


def inspect(eng: Engine, ref: str) -> dict[str, Any]:
    """`GET /images/{name}/json`: the image as `docker image inspect` shows it."""
    return inspect_record(resolve(eng, ref))


def inspect_record(r: ImageRecord) -> dict[str, Any]:
    cfg = r.config
    cc = cfg.get("config") or {}
    config: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": cc.get("User") or "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    if cc.get("ExposedPorts"):
        config["ExposedPorts"] = cc["ExposedPorts"]
    config.update(
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": cc.get("Env"),
            "Cmd": cc.get("Cmd"),
            "Image": "",
            "Volumes": cc.get("Volumes"),
            "WorkingDir": cc.get("WorkingDir") or "",
            "Entrypoint": cc.get("Entrypoint"),
            "OnBuild": cc.get("OnBuild"),
            "Labels": cc.get("Labels"),
        }
    )
    if cc.get("StopSignal"):
        config["StopSignal"] = cc["StopSignal"]
    if cc.get("Healthcheck"):
        config["Healthcheck"] = cc["Healthcheck"]
    out: dict[str, Any] = {
        "Id": r.id,
        "RepoTags": [familiar(t) for t in r.repo_tags],
        "RepoDigests": [familiar(d) for d in r.repo_digests],
        "Parent": getattr(r, "parent", None) or "",
        "Comment": cfg.get("comment") or "",
        "Created": _rfc3339(cfg.get("created") or getattr(r, "created", None)),
        "DockerVersion": cfg.get("docker_version") or "",
        "Author": cfg.get("author") or "",
        "Config": config,
        "Architecture": cfg.get("architecture") or r.architecture,
        "Os": cfg.get("os") or r.os,
        "Size": r.size,
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    out["RootFS"] = {"Type": "layers", "Layers": list(r.layers)}
    out["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}
    return out


def _rfc3339(value: Any) -> str:
    ts = created_timestamp(value)
    if isinstance(value, str) and value:
        return value
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@value
class HistoryEntry:
    """One entry of an image's history (`GET /images/{name}/history`), newest first.
    `id` is the image's on the top entry and "" below (layers have no ids of
    their own); `created` is the config's text, `size` the unpacked bytes of the
    layer the entry added (0 for an entry that added none)."""

    id: str
    created: str
    created_by: str
    size: int
    comment: str


def history(eng: Engine, ref: str) -> list[HistoryEntry]:
    from portique.image.metadata import ImageDB

    record = resolve(eng, ref)
    with eng.images.db.read() as c:
        layers = [ImageDB.layer_by_diff_id(c, d) for d in record.layers]
    sizes = [layer.size if layer is not None else 0 for layer in layers]
    raw = [h for h in record.config.get("history") or [] if isinstance(h, dict)]
    if not raw:
        # No history (some importers write none): one entry per layer, as Docker shows.
        raw = [{"created": record.created} for _ in record.layers]
    entries = []
    layer = 0
    for h in raw:
        size = 0
        if not h.get("empty_layer"):
            size = sizes[layer] if layer < len(sizes) else 0
            layer += 1
        entries.append(
            HistoryEntry(
                id="",
                created=str(h.get("created") or ""),
                created_by=str(h.get("created_by") or ""),
                size=size,
                comment=str(h.get("comment") or ""),
            )
        )
    entries.reverse()
    if entries:
        top = entries[0]
        entries[0] = HistoryEntry(record.id, top.created, top.created_by, top.size, top.comment)
    return entries


# ---- tag, remove, prune -----------------------------------------------------------------


def tag(eng: Engine, source: str, target: str) -> None:
    from portique.engine import events

    record = resolve(eng, source)
    eng.images.tag(source, target)
    events.image_record(eng, record, "tag", familiar(target))


def remove(eng: Engine, ref: str, *, force: bool = False) -> list[tuple[str, str]]:
    """`DELETE /images/{name}`: [("Untagged", ref) | ("Deleted", id)] as Docker reports them."""
    eng.recover()  # image_users rows of containers that are gone must not block rmi
    record = resolve(eng, ref)
    results = eng.images.remove(ref, force=force)
    _removal_events(eng, record, results)
    return [(what, familiar(name) if what == "Untagged" else name) for what, name in results]


def _removal_events(eng: Engine, record: ImageRecord, results: Sequence[tuple[str, str]]) -> None:
    """dockerd's `untag` per reference dropped and `delete` per image deleted,
    each with the image's id as actor and name."""
    from portique.engine import events

    for what, name in results:
        if what.lower() == "untagged":
            events.image_record(eng, record, "untag")
        elif what.lower() == "deleted":
            events.image(eng, name, name, "delete", events.image_labels(record))


def prune(
    eng: Engine, *, all: bool = False, filters: flt.Filters | None = None
) -> tuple[list[tuple[str, str]], int]:
    """`POST /images/prune`: ([("untagged"|"deleted", ref)], bytes reclaimed)."""
    wanted = flt.check(filters, PRUNE_FILTERS)
    cutoffs = [parse_until(v) for v in wanted.get("until", [])]
    imgs = eng.images
    eng.recover(images=True)
    if not wanted:
        ids, reclaimed = imgs.prune(all=all)
        from portique.engine import events

        for ident in ids:
            events.image(eng, ident, ident, "delete")
        return [("deleted", ident) for ident in ids], reclaimed
    from portique.errors import Conflict

    before = _footprint(eng)
    done: list[tuple[str, str]] = []
    for r in imgs.list(all=True):
        if r.repo_tags and not all:
            continue
        if any(_created(r) >= cutoff for cutoff in cutoffs):
            continue
        labels = _labels(r)
        if not flt.labels_match(labels, wanted.get("label", [])):
            continue
        if any(flt.label_matches(labels, want) for want in wanted.get("label!", [])):
            continue
        try:
            results = imgs.remove(r.id, force=False)
        except (Conflict, NotFound):
            continue  # in use by a container, or removed meanwhile by another prune
        _removal_events(eng, r, results)
        done += [(what.lower(), name) for what, name in results]
    return done, max(0, before - _footprint(eng))


def _footprint(eng: Engine) -> int:
    """Bytes of unpacked layers plus stored blobs: what a prune can give back."""
    imgs = eng.images
    total = int(imgs.disk_usage().get("size", 0))
    for digest in imgs.store.digests():
        try:
            total += imgs.store.size(digest)
        except NotFound:
            continue
    return total


# ---- pull, load, build ---------------------------------------------------------------


def pull(eng: Engine, ref: str, **kwargs: Any) -> PullResult:
    """`POST /images/create`: image/pull.py's pull_image, after the recovery."""
    from portique.engine import events
    from portique.image.pull import pull_image

    eng.recover(images=True)
    result = pull_image(eng.images, ref, **kwargs)
    events.pulled(eng, result.reference, result.record)
    return result


def load(eng: Engine, stream: BinaryIO, **kwargs: Any) -> list[LoadedImage]:
    """`POST /images/load`: image/load.py's load, after the recovery."""
    from portique.engine import events
    from portique.image.load import load as load_archive

    eng.recover(images=True)
    loaded = load_archive(eng.images, stream, **kwargs)
    for img in loaded:
        events.image(eng, img.id, img.id, "load")
    return loaded


def build(eng: Engine, opts: BuildOptions, out: TextIO | None = None) -> ImageRecord:
    """`POST /build`: the classic builder, after the recovery of killed builds.

    The API's query maps onto BuildOptions: t -> tags, dockerfile -> dockerfile
    (a path in the context), buildargs, labels, target, nocache, pull, q ->
    quiet, networkmode -> network, platform, extrahosts -> add_hosts,
    cachefrom -> cache_from, shmsize, ulimits -> rlimits (OCI's), memory,
    memswap; the body is the context tar, through `build_context`."""
    from portique.build.builder import Builder
    from portique.engine.network import parse_extra_host

    for name, ip in opts.add_hosts:
        parse_extra_host(f"{name}:{ip}")  # refused before anything runs
        if ip == "host-gateway":
            raise InvalidArgument("--add-host NAME:host-gateway is not supported by build")
    eng.recover(images=True)  # what a killed build (or pull) left goes first
    record = Builder(eng.images, eng.runtime_root, out).build(opts)
    from portique.engine import events

    for tag in opts.tags:  # dockerd's classic builder tells each tag it gives
        events.image_record(eng, record, "tag", familiar(tag))
    return record


@contextmanager
def build_context(eng: Engine, stream: BinaryIO) -> Iterator[Path]:
    """A build context from a tar stream, unpacked with the hostile-layer rules
    under the engine root and journalled: a killed build's context is removed by
    the next operation's recovery."""
    import os
    import shutil

    from portique import journal
    from portique.image.unpack import unpack

    tmp = eng.root / "tmp" / f"context-{os.urandom(8).hex()}"
    op = journal.Operation.begin(eng.db, "build-context", "", [{"type": "tree", "path": str(tmp)}])
    try:
        tmp.mkdir(parents=True, mode=0o700)
        head = stream.read(512)
        if head and not _is_archive(head):
            # `build - < Dockerfile`: a Dockerfile alone, and no other context.
            from portique.build.dockerfile import MAX_DOCKERFILE

            text = head + stream.read(MAX_DOCKERFILE + 1 - len(head))
            if len(text) > MAX_DOCKERFILE:
                raise InvalidArgument(
                    f"the Dockerfile on stdin is larger than {MAX_DOCKERFILE} bytes"
                )
            (tmp / "Dockerfile").write_bytes(text)
            yield tmp
            return
        from portique.image.unpack import replayed

        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            unpack(replayed(head, stream), fd)
        finally:
            os.close(fd)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            op.end()


def _is_archive(head: bytes) -> bool:
    """Is this the start of a (compressed) tar, as Docker's IsArchive decides; or
    else a Dockerfile?"""
    from portique.image.compression import Compression, detect

    if detect(head) is not Compression.NONE or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:
        stored = int(head[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return stored == computed
