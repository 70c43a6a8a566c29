"""Parsing of Docker's option values: restart, signals, labels, security, names.

Pure functions from strings to frozen values; every bad value raises
InvalidArgument naming the flag and the value, as Docker's one-line errors do.
Resource flags live in resource_opts.py, mount flags in mount_opts.py, the
process's env and user in process_opts.py; their names are re-exported here,
so callers keep one `opt` namespace.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from portique.engine.mount_opts import MAX_NAME as MAX_NAME
from portique.engine.mount_opts import NAME_CHARS as NAME_CHARS
from portique.engine.mount_opts import VOLUME_NAME_RE as VOLUME_NAME_RE
from portique.engine.mount_opts import MountSpec as MountSpec
from portique.engine.mount_opts import MountType as MountType
from portique.engine.mount_opts import bool_opt
from portique.engine.mount_opts import check_volume_name as check_volume_name
from portique.engine.mount_opts import mounts_from_host_config as mounts_from_host_config
from portique.engine.mount_opts import parse_mount as parse_mount
from portique.engine.mount_opts import parse_tmpfs as parse_tmpfs
from portique.engine.mount_opts import parse_volume as parse_volume
from portique.engine.process_opts import MAX_ENV_FILE as MAX_ENV_FILE
from portique.engine.process_opts import UserSpec as UserSpec
from portique.engine.process_opts import merge_env as merge_env
from portique.engine.process_opts import parse_env as parse_env
from portique.engine.process_opts import parse_user as parse_user
from portique.engine.process_opts import read_env_file as read_env_file
from portique.engine.resource_opts import MIN_MEMORY as MIN_MEMORY
from portique.engine.resource_opts import RLIM_INFINITY as RLIM_INFINITY
from portique.engine.resource_opts import ULIMIT_NAMES as ULIMIT_NAMES
from portique.engine.resource_opts import Ulimit as Ulimit
from portique.engine.resource_opts import bad_flag as _bad
from portique.engine.resource_opts import parse_cpus as parse_cpus
from portique.engine.resource_opts import parse_cpuset as parse_cpuset
from portique.engine.resource_opts import parse_memory as parse_memory
from portique.engine.resource_opts import parse_memory_swap as parse_memory_swap
from portique.engine.resource_opts import parse_size as parse_size
from portique.engine.resource_opts import parse_ulimit as parse_ulimit
from portique.errors import InvalidArgument, shown
from portique.linux.caps import CAPABILITIES
from portique.oci.value import value
from portique.runtime.confinement import caps_from_mask as caps_from_mask
from portique.runtime.confinement import host_capabilities as host_capabilities
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS

CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# Docker's hostname rule (RFC 1123 labels; 63 bytes, under HOST_NAME_MAX).
_HOST_LABEL_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?")
MAX_HOSTNAME = 63


class RestartKind(StrEnum):
    NO = "no"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"
    ON_FAILURE = "on-failure"


@value
class RestartPolicy:
    kind: RestartKind = RestartKind.NO
    max_retries: int = 0  # on-failure only; 0 = unlimited

    def as_docker(self) -> dict[str, object]:
        name = "" if self.kind is RestartKind.NO else str(self.kind)
        return {"Name": name or "no", "MaximumRetryCount": self.max_retries}


def parse_restart(value: str | None) -> RestartPolicy:
    if not value or value == "no":
        return RestartPolicy()
    name, _, count = value.partition(":")
    try:
        kind = RestartKind(name)
    except ValueError:
        raise _bad("--restart", value, f"invalid restart policy '{name}'") from None
    if count:
        if kind is not RestartKind.ON_FAILURE:
            raise _bad(
                "--restart",
                value,
                f"maximum retry count cannot be used with restart policy '{name}'",
            )
        try:
            n = int(count)
        except ValueError:
            raise _bad("--restart", value, "maximum retry count must be an integer") from None
        if n < 0:
            raise _bad(
                "--restart", value, "invalid restart policy: maximum retry count cannot be negative"
            )
        return RestartPolicy(kind, n)
    return RestartPolicy(kind)


def parse_signal(value: str, flag: str = "--stop-signal") -> int:
    """`SIGTERM`, `TERM`, `term` or `15`."""
    v = value.strip()
    if v.isdigit():
        n = int(v)
        if 0 < n < 65:
            return n
        raise _bad(flag, value, f"invalid signal: {value}")
    name = v.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name[3:].partition("+" if "+" in name else "-")
        if off.isdigit():
            n = (signal.SIGRTMIN + int(off)) if base == "RTMIN" else (signal.SIGRTMAX - int(off))
            if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                return int(n)
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise _bad(flag, value, f"invalid signal: {value}") from None


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


# ---------------------------------------------------------------- labels


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label: {item!r}")
        out[key] = value
    return out


# ----------------------------------------------------------------- security


@value
class SecurityOpts:
    seccomp: str = ""  # "" = default profile, "unconfined", or a JSON file path
    no_new_privileges: bool = False
    raw: tuple[str, ...] = ()


def parse_security_opts(items: Iterable[str]) -> SecurityOpts:
    seccomp = ""
    nnp = False
    raw: list[str] = []
    for item in items:
        raw.append(item)
        key, sep, value = item.partition("=") if "=" in item else item.partition(":")
        if key == "seccomp":
            if not value:
                raise InvalidArgument(f"invalid --security-opt: {item!r}")
            seccomp = value
        elif key == "no-new-privileges":
            nnp = True if not sep else bool_opt(value, item)
        elif key in ("apparmor", "label"):
            continue  # no LSM on this engine's hosts; accepted as Docker does without one
        else:
            raise InvalidArgument(f"invalid --security-opt: {item!r}")
    return SecurityOpts(seccomp, nnp, tuple(raw))


# Docker's default capability set, and every capability in kernel number order.
DEFAULT_CAPS: tuple[str, ...] = DOCKER_DEFAULT_CAPS
ALL_CAPS: tuple[str, ...] = CAPABILITIES


def _cap_name(raw: str) -> str:
    name = raw.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in ALL_CAPS:
        raise InvalidArgument(f"unknown capability: {raw!r}")
    return name


def capabilities(
    add: Iterable[str],
    drop: Iterable[str],
    privileged: bool,
    host_caps: Iterable[str] | None = None,
) -> list[str]:
    """Docker's rule: start from the default set (or all), drop, then add; ALL works both ways."""
    allowed = list(host_caps) if host_caps is not None else list(ALL_CAPS)
    adds = [_cap_name(c) for c in add]
    drops = [_cap_name(c) for c in drop]
    if privileged:
        return allowed
    caps = list(DEFAULT_CAPS)
    caps = [] if "ALL" in drops else [c for c in caps if c not in drops]
    if "ALL" in adds:
        caps = [c for c in allowed if c not in drops or "ALL" in drops]
    else:
        for c in adds:
            if c not in caps:
                caps.append(c)
    return [c for c in caps if c in allowed]


def parse_name(value: str | None) -> str:
    """A container name (Docker's rule; a leading "/" is dropped)."""
    if value is None:
        return ""
    too_long = len(value.removeprefix("/")) > MAX_NAME
    if not CONTAINER_NAME_RE.fullmatch(value) or too_long:
        raise InvalidArgument(
            f"invalid container name ({shown(value)}), only {NAME_CHARS} are allowed"
            + (f", at most {MAX_NAME} characters" if too_long else "")
        )
    return value.removeprefix("/")


_DOMAIN_RE = re.compile(
    r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*\.?"
)


def check_container_strings(
    config: Mapping[str, object],
    host: Mapping[str, object],
    networking: Mapping[str, object] | None = None,
) -> None:
    """The values of a new container that end up as lines of its /etc/hostname,
    /etc/hosts or /etc/resolv.conf: host name, resolver flags, aliases."""
    check_hostname(str(config.get("Hostname") or ""))
    check_resolver_flags(host)
    eps = (networking or {}).get("EndpointsConfig")
    for ep in eps.values() if isinstance(eps, dict) else ():
        for alias in _strings(ep.get("Aliases") if isinstance(ep, dict) else None):
            from portique.network.networks import check_alias  # ~15 ms: only for aliases

            check_alias(alias)


def check_resolver_flags(host: Mapping[str, object]) -> None:
    """--dns-search (Docker's domain rule) and --dns-option (one word each):
    both are written into the container's resolv.conf, where a newline
    would add lines of the caller's choosing."""
    for domain in _strings(host.get("DnsSearch")):
        d = domain.strip(" ")
        if d != "." and (
            not re.search(r"[a-zA-Z]", d) or not _DOMAIN_RE.fullmatch(d) or len(d) >= 255
        ):
            raise _bad("--dns-search", shown(domain), f"{shown(domain)} is not a valid domain")
    for option in _strings(host.get("DnsOptions")):
        if not option or not option.isprintable() or any(c.isspace() for c in option):
            raise _bad("--dns-option", shown(option), "an option is one word (e.g. ndots:2)")


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def check_hostname(value: str, what: str = "hostname") -> None:
    """RFC 1123 host names only (Docker's old rule): letters, digits and
    inner hyphens in dot-separated labels, at most 63 characters. A newline
    would otherwise land in /etc/hosts and /etc/hostname."""
    if not value:
        return
    if len(value) > MAX_HOSTNAME or not all(
        _HOST_LABEL_RE.fullmatch(label) for label in value.split(".")
    ):
        raise InvalidArgument(
            f"invalid {what} format: {shown(value)}: use letters, digits and hyphens in"
            f" dot-separated labels (RFC 1123), at most {MAX_HOSTNAME} characters"
        )


def host_path_exists(path: str) -> bool:
    return Path(path).exists()
