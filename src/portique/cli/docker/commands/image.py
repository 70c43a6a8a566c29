"""`portique image ...`: the image management group.

`image ls`, `inspect`, `rm` and `prune` live here; the other sub-commands are
the top-level verbs' modules (`image tag` = `tag`, `image pull` = `pull`, ...),
attached as sub-parsers so both spellings share one implementation.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from portique.errors import InvalidArgument, NotFound, PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.image.images import ImageRecord, Images

# sub-command -> (module under commands/, aliases); None: implemented in this file.
SUBCOMMANDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "ls": (None, ("list",)),
    "inspect": (None, ()),
    "rm": (None, ("remove",)),
    "prune": (None, ()),
    "tag": ("tag", ()),
    "save": ("save", ()),
    "load": ("load", ()),
    "import": ("import", ()),
    "history": ("history", ()),
    "pull": ("pull", ()),
    "push": ("push", ()),
}

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGESTS = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
IMAGES_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="image_command", metavar="COMMAND")
    sub.required = True
    local: dict[str, Callable[[argparse.ArgumentParser], None]] = {
        "ls": _ls_arguments,
        "inspect": _inspect_arguments,
        "rm": _rm_arguments,
        "prune": _prune_arguments,
    }
    for name, (module_name, aliases) in SUBCOMMANDS.items():
        if module_name is None:
            p = sub.add_parser(name, aliases=list(aliases))
            local[name](p)
            p.set_defaults(image_run=_LOCAL_RUN[name])
            continue
        # The verb's own module parses the rest when run: `image ls` never imports
        # `save` or `pull`. A NUL prefix makes every word (flags too) a positional.
        p = sub.add_parser(name, aliases=list(aliases), add_help=False, prefix_chars="\0")
        p.add_argument("image_args", nargs="*")
        p.set_defaults(image_module=module_name, image_parser=type(parser))


def _load(name: str) -> Any:
    try:
        return importlib.import_module(f"portique.cli.docker.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"portique.cli.docker.commands.{name}":
            return None
        raise


def run(eng: Engine, args: argparse.Namespace) -> int:
    fn = getattr(args, "image_run", None)
    if fn is not None:
        return int(fn(eng, args))
    module = _load(args.image_module)
    if module is None:
        raise PortiqueError(f"'image {args.image_command}' is not available in this build")
    parser = args.image_parser(prog=f"portique image {args.image_command}")
    module.add_arguments(parser)
    return int(module.run(eng, parser.parse_args(args.image_args)))


# ---- ls ---------------------------------------------------------------------------


def _ls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="show all images")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-f", "--filter", action="append", default=[], help="filter output")
    p.add_argument("--format", help="format output using a Go template, 'table' or 'json'")


def parse_filters(items: Sequence[str], allowed: Sequence[str]) -> dict[str, list[str]]:
    """`--filter key=value` flags grouped by key; unknown keys are an error, as in Docker."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        filters.setdefault(key, []).append(value)
    return filters


def _ls(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.format import format_rows

    filters = parse_filters(
        args.filter, ("dangling", "reference", "label", "before", "since", "until")
    )
    for value in filters.get("until", []):
        parse_until(value)  # a bad value is an error even when no image is listed
    if args.repository:
        filters.setdefault("reference", []).append(args.repository)
    imgs = eng.images
    dangling = filters.get("dangling")
    if dangling and any(v.lower() not in ("true", "false", "1", "0") for v in dangling):
        raise InvalidArgument(f"invalid filter 'dangling={dangling[0]}'")
    records = imgs.list(all=args.all)
    records = [r for r in records if _matches(r, filters, imgs)]
    records.sort(key=lambda r: _created(r), reverse=True)
    rows = image_rows(records, filters.get("reference", []), no_trunc=args.no_trunc)
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        sys.stdout.write("".join(f"{i}\n" for i in seen))
        return 0
    default = IMAGES_TABLE_DIGESTS if args.digests else IMAGES_TABLE
    fmt = args.format
    if fmt and args.digests and fmt == "table":
        fmt = IMAGES_TABLE_DIGESTS
    sys.stdout.write(
        format_rows(
            fmt, rows, default=default, headers=IMAGES_HEADERS, context="*formatter.imageContext"
        )
    )
    return 0


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


def _rfc3339(value: Any) -> str:
    ts = created_timestamp(value)
    if isinstance(value, str) and value:
        return value
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _matches(r: ImageRecord, filters: Mapping[str, list[str]], imgs: Images) -> bool:
    for value in filters.get("dangling", []):
        if (not r.repo_tags) != (value.lower() in ("true", "1")):
            return False
    refs = filters.get("reference")
    if refs and not any(_reference_matches(r, pattern) for pattern in refs):
        return False
    labels = (r.config.get("config") or {}).get("Labels") or {}
    if not all(_label_matches(labels, want) for want in filters.get("label", [])):
        return False
    mine = _created(r)
    if any(mine >= parse_until(v) for v in filters.get("until", [])):
        return False
    before = all(mine < _created(imgs.resolve(n)) for n in filters.get("before", []))
    return before and all(mine > _created(imgs.resolve(n)) for n in filters.get("since", []))


def _familiar(name: str) -> str:
    from portique.oci.reference import parse_reference

    try:
        return parse_reference(name).familiar()
    except InvalidArgument:
        return name


def _reference_matches(r: ImageRecord, pattern: str) -> bool:
    """Docker's reference filter: a glob against `repo:tag`, or against `repo` alone."""
    return any(_glob_tag(t, pattern) for t in r.repo_tags)


def image_rows(
    records: Sequence[ImageRecord], references: Sequence[str] = (), *, no_trunc: bool = False
) -> list[dict[str, Any]]:
    """Docker's `images` rows: one per repository:tag (and digest), `<none>` when untagged."""
    from portique.cli.docker.format import Record
    from portique.units import human_size, short_id, time_ago

    rows: list[dict[str, Any]] = []
    for r in records:
        created = _created(r)
        base = {
            "ID": short_id(r.id, no_trunc=no_trunc) if not no_trunc else r.id,
            "CreatedSince": time_ago(created),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
            "Size": human_size(r.size),
            "VirtualSize": human_size(r.size),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
            "Containers": "N/A",
        }
        digests: dict[str, list[str]] = {}
        for rd in r.repo_digests:
            repo, _, digest = _familiar(rd).partition("@")
            digests.setdefault(repo, []).append(digest)
        tags: dict[str, list[str]] = {}
        for t in r.repo_tags:
            if references and not any(_glob_tag(t, p) for p in references):
                continue
            repo, _, tag = _familiar(t).rpartition(":")
            tags.setdefault(repo, []).append(tag)
        for repo, tag_list in tags.items():
            for tag in tag_list:
                digest = (digests.get(repo) or ["<none>"])[0]
                rows.append(Record(base, Repository=repo, Tag=tag, Digest=digest))
        for repo, digest_list in digests.items():
            if repo not in tags and not references:
                rows.extend(
                    Record(base, Repository=repo, Tag="<none>", Digest=d) for d in digest_list
                )
        if not r.repo_tags and not r.repo_digests and not references:
            rows.append(Record(base, Repository="<none>", Tag="<none>", Digest="<none>"))
    return rows


def _glob_tag(tag: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    familiar = _familiar(tag)
    return fnmatchcase(familiar, pattern) or fnmatchcase(familiar.rsplit(":", 1)[0], pattern)


# ---- inspect ----------------------------------------------------------------------


def _inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", help="format output using a Go template")


def inspect_image(r: ImageRecord) -> dict[str, Any]:
    """The image as `docker image inspect` shows it."""
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
        "RepoTags": [_familiar(t) for t in r.repo_tags],
        "RepoDigests": [_familiar(d) for d in r.repo_digests],
        "Parent": "",
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


def print_inspect(
    objects: Sequence[Any],
    fmt: str | None,
    type_names: str | Sequence[str] = "image.InspectResponse",
) -> int:
    """`inspect` output: an indented JSON array, a compact one for "json", or one
    template line per object (docker/cli's inspector). Returns 1 when the template
    failed on some object (those errors go to stderr), else 0. A template that
    does not parse is a TemplateError (exit 64) before anything is printed.
    """
    import json

    if not fmt:
        sys.stdout.write(json.dumps(list(objects), indent=4, ensure_ascii=False) + "\n")
        return 0
    if fmt == "json":
        sys.stdout.write(
            json.dumps(list(objects), separators=(",", ":"), ensure_ascii=False) + "\n"
        )
        return 0
    from portique.cli.docker import templates

    names = [type_names] * len(objects) if isinstance(type_names, str) else list(type_names)
    tmpl = templates.parse(fmt, syntax_exit=64, prefix="template parsing error: ")
    out: list[str] = []
    errors: list[str] = []
    for obj, name in zip(objects, names, strict=True):
        try:
            out.append(templates.inspect_one(tmpl, obj, name) + "\n")
        except templates.TemplateError as exc:
            errors.append(str(exc))
    sys.stdout.write("".join(out) or "\n")
    for err in errors:
        sys.stderr.write(f"portique: {err}\n")
    return 1 if errors else 0


def _inspect(eng: Engine, args: argparse.Namespace) -> int:
    imgs = eng.images
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in args.images:
        try:
            found.append(inspect_image(imgs.resolve(name)))
        except NotFound:
            missing.append(name)
    status = 0
    if found or not args.format:
        status = print_inspect(found, args.format)  # Docker prints "[]" even when nothing was found
    for name in missing:
        sys.stderr.write(f"portique: no such image: {name}\n")
    return 125 if missing else status


# ---- rm ---------------------------------------------------------------------------


def _rm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")


def _rm(eng: Engine, args: argparse.Namespace) -> int:
    eng.recover()  # image_users rows of containers that are gone must not block rmi
    imgs = eng.images
    status = 0
    for name in args.images:
        try:
            results = imgs.remove(name, force=args.force)
        except PortiqueError as exc:
            sys.stdout.flush()
            sys.stderr.write(f"portique: {exc}\n")
            status = exc.exit_code
            continue
        for what, ref in results:
            sys.stdout.write(f"{what}: {_familiar(ref) if what == 'Untagged' else ref}\n")
    return status


# ---- prune ------------------------------------------------------------------------


def _prune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="provide filter values")


def confirm(warning: str) -> bool:
    """Docker's prompt: the warning, then `Are you sure you want to continue? [y/N]`."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def parse_until(value: str, now: float | None = None) -> float:
    """Docker's `until=`: a Go duration before now ("24h", "1h30m"), or a timestamp."""
    import re

    now = time.time() if now is None else now
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value)
    if parts and "".join(n + u for n, u in parts) == value:
        return now - sum(float(n) * units[u] for n, u in parts)
    try:
        return float(value)  # Unix seconds
    except ValueError:
        pass
    ts = created_timestamp(value if "T" in value else value + "T00:00:00Z")
    if ts <= 0:
        raise InvalidArgument(f"invalid filter 'until={value}': expected a duration or a timestamp")
    return ts


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.units import human_size

    filters = parse_filters(args.filter, ("until", "label", "label!"))
    cutoffs = [parse_until(v) for v in filters.get("until", [])]
    if not args.force:
        warning = (
            "WARNING! This will remove all images without at least one container associated to them."
            if args.all
            else "WARNING! This will remove all dangling images."
        )
        if not confirm(warning):
            return 0
    imgs = eng.images
    eng.recover(images=True)
    if filters:
        lines, reclaimed = _prune_filtered(imgs, filters, cutoffs, all_images=args.all)
    else:
        ids, reclaimed = imgs.prune(all=args.all)
        lines = [f"deleted: {ident}" for ident in ids]
    if lines:
        sys.stdout.write("Deleted Images:\n" + "".join(f"{line}\n" for line in lines) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed, 4)}\n")
    return 0


def _prune_filtered(
    imgs: Images, filters: Mapping[str, list[str]], cutoffs: Sequence[float], *, all_images: bool
) -> tuple[list[str], int]:
    """Prune with `until`/`label` filters: remove each matching candidate as `rmi` would."""
    from portique.errors import Conflict

    before = _footprint(imgs)
    lines: list[str] = []
    for r in imgs.list(all=True):
        if r.repo_tags and not all_images:
            continue
        if any(_created(r) >= cutoff for cutoff in cutoffs):
            continue
        labels = (r.config.get("config") or {}).get("Labels") or {}
        if not all(_label_matches(labels, want) for want in filters.get("label", [])):
            continue
        if any(_label_matches(labels, want) for want in filters.get("label!", [])):
            continue
        try:
            results = imgs.remove(r.id, force=False)
        except (Conflict, NotFound):
            continue  # in use by a container, or removed meanwhile by another prune
        lines += [f"{what.lower()}: {ref}" for what, ref in results]
    return lines, max(0, before - _footprint(imgs))


def _label_matches(labels: Mapping[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _footprint(imgs: Images) -> int:
    """Bytes of unpacked layers plus stored blobs: what a prune can give back."""
    total = int(imgs.disk_usage().get("size", 0))
    for digest in imgs.store.digests():
        try:
            total += imgs.store.size(digest)
        except NotFound:
            continue
    return total


_LOCAL_RUN: dict[str, Callable[[Engine, argparse.Namespace], int]] = {
    "ls": _ls,
    "inspect": _inspect,
    "rm": _rm,
    "prune": _prune,
}
