"""`portique events [--since T] [--until T] [--filter k=v]... [--format TEMPLATE]`
(also `system events`): the engine's recorded events, then the new ones as
they are recorded, until interrupted (or until `--until`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.engine.events import Event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filter", action="append", default=[], help="filter output")
    parser.add_argument("--format", default="", help="format output using a Go template")
    parser.add_argument("--since", default="", help="show all events created since timestamp")
    parser.add_argument("--until", default="", help="stream events until this timestamp")


def message(ev: Event) -> Any:
    """The value a --format template sees: docker's events.Message struct."""
    from portique.cli.gotemplate import GoMap, Struct

    api = ev.to_api()
    attributes = GoMap(dict(ev.attributes), "string", "string")
    actor = Struct("events.Actor", {"ID": ev.actor_id, "Attributes": attributes})
    # encoding/json's view: the API's names in the struct's order (status, id
    # and from left out when empty).
    marshalled = Struct("", {k: actor if k == "Actor" else v for k, v in api.items()})
    fields = {
        "Status": api.get("status", ""),
        "ID": api.get("id", ""),
        "From": api.get("from", ""),
        "Type": ev.type,
        "Action": ev.action,
        "Actor": actor,
        "Scope": ev.scope,
        "Time": api["time"],
        "TimeNano": api["timeNano"],
    }
    return Struct("events.Message", fields, json=lambda: marshalled)


def run(eng: Engine, args: argparse.Namespace) -> int:
    import sys

    from portique.cli.docker.filters import from_flags
    from portique.engine import events
    from portique.engine.logs import parse_since
    from portique.errors import InvalidArgument

    filters = from_flags(args.filter)
    since = parse_since(args.since) if args.since else None
    try:
        until = parse_since(args.until) if args.until else None
    except InvalidArgument:
        raise InvalidArgument(f"invalid value for --until: {args.until!r}") from None
    tmpl = None
    if args.format:
        from portique.cli.docker import templates

        tmpl = templates.parse(args.format)
    out = sys.stdout
    for ev in events.read(eng, since, until, filters):
        if tmpl is None:
            out.write(ev.line() + "\n")
        else:
            from portique.cli.docker import templates

            out.write(templates.execute(tmpl, message(ev)) + "\n")
        out.flush()
    return 0
