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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from portique.errors import PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

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
    "build": ("build", ()),
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


def _ls(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.filters import from_flags
    from portique.cli.docker.format import format_rows
    from portique.engine import images

    filters = from_flags(args.filter)
    if args.repository:  # `images busybox` is the reference filter, as the docker CLI sends it
        filters.setdefault("reference", []).append(args.repository)
    listed = images.list_images(eng, all=args.all, filters=filters)
    rows = image_rows(listed, filters.get("reference", []), no_trunc=args.no_trunc)
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


def image_rows(
    summaries: Sequence[dict[str, Any]],
    references: Sequence[str] = (),
    *,
    no_trunc: bool = False,
) -> list[dict[str, Any]]:
    """Docker's `images` rows from image summaries (the API's JSON): one per
    repository:tag (and digest), `<none>` when untagged."""
    from portique.cli.docker.format import Record
    from portique.units import human_size, short_id, time_ago

    rows: list[dict[str, Any]] = []
    for s in summaries:
        created = float(s["Created"])
        base = {
            "ID": short_id(s["Id"], no_trunc=no_trunc) if not no_trunc else s["Id"],
            "CreatedSince": time_ago(created),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
            "Size": human_size(s["Size"]),
            "VirtualSize": human_size(s["Size"]),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
            "Containers": "N/A",
        }
        digests: dict[str, list[str]] = {}
        for rd in s["RepoDigests"]:
            repo, _, digest = rd.partition("@")
            digests.setdefault(repo, []).append(digest)
        tags: dict[str, list[str]] = {}
        for t in s["RepoTags"]:
            repo, _, tag = t.rpartition(":")
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
        if not s["RepoTags"] and not s["RepoDigests"] and not references:
            rows.append(Record(base, Repository="<none>", Tag="<none>", Digest="<none>"))
    return rows


# ---- inspect ----------------------------------------------------------------------


def _inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", help="format output using a Go template")


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
    from portique.cli.docker.each import collect, report_missings
    from portique.engine import images

    found, missing = collect(args.images, lambda ref: images.inspect(eng, ref))
    status = 0
    if found or not args.format:
        status = print_inspect(found, args.format)  # Docker prints "[]" even when nothing was found
    return report_missings(missing) or status


# ---- rm ---------------------------------------------------------------------------


def _rm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")


def _rm(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import Missing, for_each
    from portique.engine import images

    def show(_ref: str, results: list[tuple[str, str]]) -> None:
        sys.stdout.write("".join(f"{what}: {name}\n" for what, name in results))

    return for_each(
        args.images,
        lambda ref: images.remove(eng, ref, force=args.force),
        show=show,
        # `rmi -f` of nothing: said, no failure; any other failure exits 1, as Docker.
        missing=Missing.WARN if args.force else Missing.FAIL,
    )


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


def _prune(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.filters import from_flags
    from portique.engine import filters as flt
    from portique.engine import images
    from portique.units import human_size

    filters = from_flags(args.filter)
    for value in flt.check(filters, images.PRUNE_FILTERS).get("until", []):
        images.parse_until(value)  # a bad filter fails before the prompt
    if not args.force:
        warning = (
            "WARNING! This will remove all images without at least one container associated to them."
            if args.all
            else "WARNING! This will remove all dangling images."
        )
        if not confirm(warning):
            return 0
    done, reclaimed = images.prune(eng, all=args.all, filters=filters)
    if done:
        lines = "".join(f"{what}: {name}\n" for what, name in done)
        sys.stdout.write("Deleted Images:\n" + lines + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed, 4)}\n")
    return 0


_LOCAL_RUN: dict[str, Callable[[Engine, argparse.Namespace], int]] = {
    "ls": _ls,
    "inspect": _inspect,
    "rm": _rm,
    "prune": _prune,
}
