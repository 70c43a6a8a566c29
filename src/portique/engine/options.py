"""Parsing of Docker's option values: sizes, CPUs, ulimits, volumes, mounts, env.

Pure functions from strings to frozen values; every bad value raises
InvalidArgument naming the flag and the value, as Docker's one-line errors do
(`invalid argument "12q" for "-m, --memory" flag: invalid size: '12q'`).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from portique.engine.process_opts import MAX_ENV_FILE as MAX_ENV_FILE
from portique.engine.process_opts import UserSpec as UserSpec
from portique.engine.process_opts import merge_env as merge_env
from portique.engine.process_opts import parse_env as parse_env
from portique.engine.process_opts import parse_user as parse_user
from portique.engine.process_opts import read_env_file as read_env_file
from portique.errors import InvalidArgument, shown
from portique.linux.caps import CAPABILITIES
from portique.oci.value import value
from portique.runtime.confinement import caps_from_mask as caps_from_mask
from portique.runtime.confinement import host_capabilities as host_capabilities
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less: the runtime itself needs room
# Docker's names for volumes and containers (fullmatch: `$` would let "a\n" in).
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
VOLUME_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# A volume's name is a directory name (NAME_MAX); containers' and networks'
# are DNS names. Docker sets no limit and fails later, naming host paths.
MAX_NAME = 255
# Docker's hostname rule (RFC 1123 labels; 63 bytes, under HOST_NAME_MAX).
_HOST_LABEL_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?")
MAX_HOSTNAME = 63
_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def _bad(flag: str, value: str, why: str) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {why}')


def parse_size(value: str, flag: str = "--memory") -> int:
    """Docker's RAMInBytes: `12m`, `1g`, `512k`, `1.5GiB`, bare bytes."""
    m = _SIZE_RE.match(value.strip())
    if not m:
        raise _bad(flag, value, f"invalid size: '{value}'")
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
        raise _bad("--cpus", value, "failed to parse as a decimal number") from None
    if f < 0 or f != f or f > 1e6:
        raise _bad("--cpus", value, "range of CPUs is from 0.01 to the number of CPUs")
    nano = round(f * 1e9)
    if 0 < nano < 10_000_000:
        raise _bad("--cpus", value, "range of CPUs is from 0.01 to the number of CPUs")
    return nano


def parse_cpuset(value: str | None) -> str:
    if not value:
        return ""
    if not _CPUSET_RE.match(value):
        raise _bad("--cpuset-cpus", value, "invalid format")
    for part in value.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise _bad("--cpuset-cpus", value, "invalid range")
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
        raise _bad("--ulimit", spec, f"invalid ulimit value: {raw}") from None
    if n < 0:
        raise _bad("--ulimit", spec, f"invalid ulimit value: {raw}")
    return n


def parse_ulimit(spec: str) -> Ulimit:
    name, sep, values = spec.partition("=")
    if not sep or not values:
        raise _bad("--ulimit", spec, f"invalid ulimit argument: {spec}")
    if name not in ULIMIT_NAMES:
        raise _bad("--ulimit", spec, f"invalid ulimit type: {name}")
    soft_s, _, hard_s = values.partition(":")
    soft = _ulimit_value(soft_s, spec)
    hard = _ulimit_value(hard_s, spec) if hard_s else soft
    if soft > hard:
        raise _bad(
            "--ulimit",
            spec,
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
        )
    return Ulimit(name, soft, hard)


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


# ---------------------------------------------------------------- environment


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label: {item!r}")
        out[key] = value
    return out


# ----------------------------------------------------------------- mounts


class MountType(StrEnum):
    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


@value
class MountSpec:
    type: MountType
    target: str
    source: str = ""  # host path (bind), volume name ("" = anonymous), unused for tmpfs
    readonly: bool = False
    propagation: str = ""
    options: tuple[str, ...] = ()  # tmpfs mount data (size=..., mode=...), bind extras
    create_host_path: bool = False  # -v creates a missing bind source, --mount refuses
    nocopy: bool = False

    def as_docker(self) -> dict[str, object]:
        """HostConfig.Mounts entry (Docker's mount.Mount); `mounts_from_host_config`
        reads it back to this same spec, so the CLI and the API create alike."""
        out: dict[str, object] = {
            "Type": str(self.type),
            "Source": self.source,
            "Target": self.target,
        }
        if self.readonly:
            out["ReadOnly"] = True
        if self.propagation:
            out["BindOptions"] = {"Propagation": self.propagation}
        if self.nocopy:
            out["VolumeOptions"] = {"NoCopy": True}
        tmpfs: dict[str, int] = {}
        for o in self.options:
            key, _, val = o.partition("=")
            if key == "size":
                tmpfs["SizeBytes"] = int(val)
            elif key == "mode":
                tmpfs["Mode"] = int(val, 8)
        if tmpfs:
            out["TmpfsOptions"] = tmpfs
        return out


def _check_target(target: str, spec: str, flag: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid {flag} specification: {spec!r}: mount path must be absolute"
        )
    norm = os.path.normpath(target)
    if norm == "/":
        raise InvalidArgument(f"invalid {flag} specification: {spec!r}: destination can't be '/'")
    if "\0" in target:
        raise InvalidArgument(f"invalid {flag} specification: {spec!r}")
    return norm


def parse_volume(spec: str) -> MountSpec:
    """-v [SOURCE:]TARGET[:OPTIONS]; SOURCE absolute = bind, else a volume name."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise InvalidArgument(f"invalid volume specification: {spec!r}")
    opts: list[str] = []
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2 and parts[1].startswith("/"):
        source, target = parts
    elif len(parts) == 2:
        # /target:ro  (anonymous volume with options)
        source, target, opts = "", parts[0], parts[1].split(",")
    else:
        source, target, opts = parts[0], parts[1], parts[2].split(",")
    target = _check_target(target, spec, "volume")
    readonly = False
    propagation = ""
    nocopy = False
    for o in opts:
        if o == "ro":
            readonly = True
        elif o == "rw":
            readonly = False
        elif o in _PROPAGATIONS:
            propagation = o
        elif o == "nocopy":
            nocopy = True
        elif o in ("z", "Z", "consistent", "cached", "delegated"):
            pass  # SELinux relabel / macOS consistency: nothing to do here
        else:
            raise InvalidArgument(f"invalid volume specification: {spec!r}: invalid mode: {o}")
    if source.startswith("/"):
        return MountSpec(
            MountType.BIND,
            target,
            os.path.normpath(source),
            readonly,
            propagation,
            create_host_path=True,
        )
    if source:
        check_volume_name(source)
    if propagation:
        raise InvalidArgument(
            f"invalid volume specification: {spec!r}: propagation applies to binds only"
        )
    return MountSpec(MountType.VOLUME, target, source, readonly, nocopy=nocopy)


def _bool_opt(value: str, spec: str) -> bool:
    v = value.lower()
    if v in ("", "1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid mount specification: {spec!r}: invalid boolean {value!r}")


def parse_mount(spec: str) -> MountSpec:
    """--mount type=bind|volume|tmpfs,source=..,target=..,readonly,..."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep and key not in ("readonly", "ro"):
            raise InvalidArgument(f"invalid mount specification: {spec!r}: invalid field {item!r}")
        fields[key] = value
    kind = fields.pop("type", "volume")
    try:
        mtype = MountType(kind)
    except ValueError:
        raise InvalidArgument(
            f"invalid mount specification: {spec!r}: unknown type {kind!r}"
        ) from None
    source = ""
    target = ""
    readonly = False
    propagation = ""
    nocopy = False
    options: list[str] = []
    for key, value in fields.items():
        if key in ("source", "src"):
            source = value
        elif key in ("target", "destination", "dst"):
            target = value
        elif key in ("readonly", "ro"):
            readonly = _bool_opt(value, spec)
        elif key == "bind-propagation" and mtype is MountType.BIND:
            if value not in _PROPAGATIONS:
                raise InvalidArgument(
                    f"invalid mount specification: {spec!r}: bad propagation {value!r}"
                )
            propagation = value
        elif key == "volume-nocopy" and mtype is MountType.VOLUME:
            nocopy = _bool_opt(value, spec)
        elif key == "tmpfs-size" and mtype is MountType.TMPFS:
            options.append(f"size={parse_size(value, '--mount')}")
        elif key == "tmpfs-mode" and mtype is MountType.TMPFS:
            try:
                options.append(f"mode={int(value, 8):o}")
            except ValueError:
                raise InvalidArgument(
                    f"invalid mount specification: {spec!r}: bad tmpfs-mode"
                ) from None
        elif key in (
            "consistency",
            "volume-driver",
            "volume-label",
            "volume-opt",
            "bind-nonrecursive",
        ):
            continue
        else:
            raise InvalidArgument(f"invalid mount specification: {spec!r}: unexpected key {key!r}")
    if not target:
        raise InvalidArgument(f"invalid mount specification: {spec!r}: target is required")
    target = _check_target(target, spec, "mount")
    if mtype is MountType.BIND:
        if not source.startswith("/"):
            raise InvalidArgument(
                f"invalid mount specification: {spec!r}: bind source must be an absolute path"
            )
        source = os.path.normpath(source)
    elif mtype is MountType.VOLUME:
        if source:
            check_volume_name(source)
    elif source:
        raise InvalidArgument(f"invalid mount specification: {spec!r}: tmpfs takes no source")
    return MountSpec(mtype, target, source, readonly, propagation, tuple(options), nocopy=nocopy)


_TMPFS_OPTS = re.compile(
    r"^(size=\d+[kKmMgG]?|nr_inodes=\d+[kKmMgG]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|"
    r"ro|rw|noexec|exec|nosuid|suid|nodev|dev|noatime|atime|nodiratime|relatime)$"
)


def parse_tmpfs(spec: str) -> MountSpec:
    """--tmpfs /path[:opt,opt]"""
    target, _, opts = spec.partition(":")
    target = _check_target(target, spec, "tmpfs")
    options: list[str] = []
    readonly = False
    for o in filter(None, opts.split(",")):
        if not _TMPFS_OPTS.match(o):
            raise InvalidArgument(f"invalid tmpfs specification: {spec!r}: bad option {o!r}")
        if o == "ro":
            readonly = True
        elif o != "rw":
            options.append(o)
    return MountSpec(MountType.TMPFS, target, "", readonly, options=tuple(options))


def mounts_from_host_config(host: Mapping[str, object]) -> list[MountSpec]:
    """The mounts of an API HostConfig (Binds, Mounts, Tmpfs), checked as the CLI's flags are."""
    out = [parse_volume(spec) for spec in _list_of_str(host.get("Binds"), "HostConfig.Binds")]
    mounts = host.get("Mounts")
    if mounts is None:
        mounts = []
    if not isinstance(mounts, list):
        raise InvalidArgument("HostConfig.Mounts must be a list")
    for m in mounts:
        if not isinstance(m, Mapping):
            raise InvalidArgument("HostConfig.Mounts entries must be objects")
        fields = [f"type={m.get('Type') or 'volume'}", f"target={m.get('Target') or ''}"]
        if m.get("Source"):
            fields.append(f"source={m['Source']}")
        if m.get("ReadOnly"):
            fields.append("readonly")
        bind = m.get("BindOptions")
        if isinstance(bind, Mapping) and bind.get("Propagation"):
            fields.append(f"bind-propagation={bind['Propagation']}")
        vol = m.get("VolumeOptions")
        if isinstance(vol, Mapping) and vol.get("NoCopy"):
            fields.append("volume-nocopy=true")
        tmpfs = m.get("TmpfsOptions")
        if isinstance(tmpfs, Mapping):
            if tmpfs.get("SizeBytes"):
                fields.append(f"tmpfs-size={int(str(tmpfs['SizeBytes']))}")
            if tmpfs.get("Mode"):
                fields.append(f"tmpfs-mode={int(str(tmpfs['Mode'])):o}")
        spec = ",".join(fields)
        if "," in str(m.get("Source") or "") or "," in str(m.get("Target") or ""):
            raise InvalidArgument(f"invalid mount: {m!r}")
        out.append(parse_mount(spec))
    tmpfs_map = host.get("Tmpfs")
    if tmpfs_map is None:
        tmpfs_map = {}
    if not isinstance(tmpfs_map, Mapping):
        raise InvalidArgument("HostConfig.Tmpfs must be an object")
    for target, opts in tmpfs_map.items():
        out.append(parse_tmpfs(f"{target}:{opts}" if opts else str(target)))
    return out


def _list_of_str(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{field} must be a list of strings")
    return list(value)


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
            nnp = True if not sep else _bool_opt(value, item)
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


def check_volume_name(name: str) -> None:
    """A local volume's name, with Docker's messages."""
    if len(name) == 1:
        raise InvalidArgument(
            f"create {shown(name)}: volume name is too short, names should be at least two"
            " alphanumeric characters"
        )
    if not VOLUME_NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f'create {shown(name)}: "{shown(name)}" includes invalid characters for a local volume'
            f' name, only "{NAME_CHARS}" are allowed; if you intended to pass a host directory,'
            " use absolute path"
        )
    if len(name) > MAX_NAME:
        raise InvalidArgument(
            f"create {shown(name)}: volume name is too long, names may have at most"
            f" {MAX_NAME} characters"
        )


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
