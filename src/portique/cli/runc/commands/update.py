"""`update [flags] ID`: change a live container's cgroup limits, as runc does.

Resources come from `--resources FILE` (an OCI linux.resources object, "-"
for stdin) and/or runc's single-value flags (which win). Only memory, cpu,
pids, blockIO and unified are updated; device rules are not touched.

In the file, a zero (or empty cpuset) leaves the value as it is, as runc's
update reads it: callers send every field they know, zeros included
(dockerd's `docker update --memory` sends `kernel: 0`, `shares: 0`,
`quota: 0`, `reservation: 0`), and none of these zeros is a limit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from portique.cli.runc.commands._common import add_id
from portique.cli.runc.context import Context
from portique.errors import InvalidArgument

_MAX_JSON = 1 << 20
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_UPDATABLE = ("memory", "cpu", "pids", "blockIO", "unified")
# The fields runc's update reads where zero means "unchanged".
_ZERO_UNCHANGED: dict[str, frozenset[str]] = {
    "memory": frozenset({"limit", "reservation", "swap", "kernel", "kernelTCP"}),
    "cpu": frozenset(
        {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"}
    ),
    "pids": frozenset({"limit"}),
    "blockIO": frozenset({"weight"}),
}

# flag -> (section, key, parser)
_FLAGS: dict[str, tuple[str, str, str]] = {
    "memory": ("memory", "limit", "size"),
    "memory_reservation": ("memory", "reservation", "size"),
    "memory_swap": ("memory", "swap", "size"),
    "kernel_memory": ("memory", "kernel", "size"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "size"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "pids_limit": ("pids", "limit", "int"),
    "blkio_weight": ("blockIO", "weight", "int"),
}


def parse_size(text: str) -> int:
    """Bytes from "512m", "1g", "1024", "-1" (unlimited), as docker's RAMInBytes."""
    if text.strip() == "-1":
        return -1
    match = _SIZE.match(text.strip())
    if match is None:
        raise InvalidArgument(f"invalid size {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resources", "-r", default="", help="linux.resources JSON file or -")
    for flag in _FLAGS:
        parser.add_argument("--" + flag.replace("_", "-"), default=None)
    # Intel RDT (resctrl): parsed as runc does, refused in run().
    parser.add_argument("--l3-cache-schema", default=None)
    parser.add_argument("--mem-bw-schema", default=None)
    add_id(parser)


def resources_object(args: argparse.Namespace) -> dict[str, Any]:
    """The linux.resources object to apply, from --resources and the flags."""
    obj: dict[str, Any] = {}
    if args.resources:
        if args.resources == "-":
            raw = sys.stdin.buffer.read(_MAX_JSON + 1)
        else:
            try:
                with open(args.resources, "rb") as f:
                    raw = f.read(_MAX_JSON + 1)
            except FileNotFoundError:
                raise InvalidArgument(f"resources file {args.resources} does not exist") from None
        if len(raw) > _MAX_JSON:
            raise InvalidArgument("resources JSON is too large")
        try:
            loaded = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgument(f"resources are not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidArgument("resources must be a JSON object")
        obj = {k: _drop_unchanged(k, v) for k, v in loaded.items() if k in _UPDATABLE}
        obj = {k: v for k, v in obj.items() if v != {}}
    for flag, (section, key, kind) in _FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if kind == "size":
            parsed: object = parse_size(value)
        elif kind == "int":
            try:
                parsed = int(value)
            except ValueError:
                raise InvalidArgument(
                    f"--{flag.replace('_', '-')}: not a number: {value!r}"
                ) from None
        else:
            parsed = value
        obj.setdefault(section, {})[key] = parsed
    if not obj:
        raise InvalidArgument("nothing to update: give --resources or a resource flag")
    return obj


def _drop_unchanged(section: str, value: object) -> object:
    """`value` without the zero fields runc's update leaves as they are."""
    keys = _ZERO_UNCHANGED.get(section)
    if keys is None or not isinstance(value, dict):
        return value
    return {
        k: v
        for k, v in value.items()
        if not (k in keys and (v == 0 or v == "") and not isinstance(v, bool))
    }


def run(args: argparse.Namespace, ctx: Context) -> int:
    from portique.oci.resources import parse_resources

    if args.l3_cache_schema is not None or args.mem_bw_schema is not None:
        raise InvalidArgument("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported")
    resources = parse_resources(resources_object(args))
    ctx.runtime().update(args.container_id, resources)
    return 0
