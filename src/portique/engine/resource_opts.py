"""Parsing of Docker's resource flags: sizes, memory, CPUs, cpusets, ulimits.

Pure functions from strings to frozen values; every bad value raises
InvalidArgument naming the flag and the value, as Docker's one-line errors do
(`invalid argument "12q" for "-m, --memory" flag: invalid size: '12q'`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from portique.errors import InvalidArgument
from portique.oci.value import value

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less: the runtime itself needs room
_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def bad_flag(flag: str, value: str, why: str) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {why}')


def parse_size(value: str, flag: str = "--memory") -> int:
    """Docker's RAMInBytes: `12m`, `1g`, `512k`, `1.5GiB`, bare bytes."""
    m = _SIZE_RE.match(value.strip())
    if not m:
        raise bad_flag(flag, value, f"invalid size: '{value}'")
    n = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    return int(n)


def parse_memory(value: str | None) -> int:
    if value is None or value == "":
        return 0
    n = parse_size(value, "-m, --memory")
    if 0 < n < MIN_MEMORY:
        raise InvalidArgument("minimum memory limit allowed is 6MB")
    return n


def parse_memory_swap(value: str | None, memory: int) -> int:
    """0 = unset (Docker then allows swap = 2 x memory), -1 = unlimited."""
    if value is None or value == "":
        return 0
    if value.strip() == "-1":
        return -1
    n = parse_size(value, "--memory-swap")
    if memory and n < memory:
        raise InvalidArgument(
            "minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if not memory and n:
        raise InvalidArgument("you should always set the memory limit when using memoryswap limit")
    return n


def parse_cpus(value: str | None) -> int:
    """--cpus 1.5 -> NanoCPUs (1.5e9)."""
    if value is None or value == "":
        return 0
    try:
        f = float(value)
    except ValueError:
        raise bad_flag("--cpus", value, "failed to parse as a decimal number") from None
    if f < 0 or f != f or f > 1e6:
        raise bad_flag("--cpus", value, "range of CPUs is from 0.01 to the number of CPUs")
    nano = round(f * 1e9)
    if 0 < nano < 10_000_000:
        raise bad_flag("--cpus", value, "range of CPUs is from 0.01 to the number of CPUs")
    return nano


def parse_cpuset(value: str | None, flag: str = "--cpuset-cpus") -> str:
    if not value:
        return ""
    if not _CPUSET_RE.match(value):
        raise bad_flag(flag, value, "invalid format")
    for part in value.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise bad_flag(flag, value, "invalid range")
    return value


ULIMIT_NAMES: Mapping[str, str] = {
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}
RLIM_INFINITY = (1 << 64) - 1


@value
class Ulimit:
    name: str  # Docker's short name: "nofile"
    soft: int
    hard: int

    @property
    def rlimit(self) -> str:
        return ULIMIT_NAMES[self.name]


def _ulimit_value(raw: str, spec: str) -> int:
    if raw in ("-1", "unlimited"):
        return RLIM_INFINITY
    try:
        n = int(raw)
    except ValueError:
        raise bad_flag("--ulimit", spec, f"invalid ulimit value: {raw}") from None
    if n < 0:
        raise bad_flag("--ulimit", spec, f"invalid ulimit value: {raw}")
    return n


def parse_ulimit(spec: str) -> Ulimit:
    name, sep, values = spec.partition("=")
    if not sep or not values:
        raise bad_flag("--ulimit", spec, f"invalid ulimit argument: {spec}")
    if name not in ULIMIT_NAMES:
        raise bad_flag("--ulimit", spec, f"invalid ulimit type: {name}")
    soft_s, _, hard_s = values.partition(":")
    soft = _ulimit_value(soft_s, spec)
    hard = _ulimit_value(hard_s, spec) if hard_s else soft
    if soft > hard:
        raise bad_flag(
            "--ulimit",
            spec,
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
        )
    return Ulimit(name, soft, hard)
