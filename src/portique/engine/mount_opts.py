"""Parsing of Docker's mount flags: `-v`, `--mount`, `--tmpfs`, HostConfig mounts.

Every bad value raises InvalidArgument with Docker's one-line wording.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum

from portique.engine.resource_opts import parse_size
from portique.errors import InvalidArgument, shown
from portique.oci.value import value

# Docker's names for volumes and containers (fullmatch: `$` would let "a\n" in).
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
VOLUME_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# A volume's name is a directory name (NAME_MAX); containers' and networks'
# are DNS names. Docker sets no limit and fails later, naming host paths.
MAX_NAME = 255


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


def bool_opt(value: str, spec: str) -> bool:
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
            readonly = bool_opt(value, spec)
        elif key == "bind-propagation" and mtype is MountType.BIND:
            if value not in _PROPAGATIONS:
                raise InvalidArgument(
                    f"invalid mount specification: {spec!r}: bad propagation {value!r}"
                )
            propagation = value
        elif key == "volume-nocopy" and mtype is MountType.VOLUME:
            nocopy = bool_opt(value, spec)
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


def _is_relative_source(source: str) -> bool:
    """docker CLI 23+ resolves `.` and `./PATH` against the cwd, nothing else
    (`data:/x` stays a volume name)."""
    return source == "." or source.startswith("./")


def resolve_volume_source(spec: str, cwd: str) -> str:
    """`-v ./data:/data` -> `-v /CWD/data:/data`, as the docker CLI does before
    sending Binds (the API takes absolute paths only)."""
    source, sep, rest = spec.partition(":")
    if sep and _is_relative_source(source):
        return os.path.normpath(os.path.join(cwd, source)) + sep + rest
    return spec


def resolve_mount_source(spec: str, cwd: str) -> str:
    """`--mount type=bind,src=.,dst=/x`: a relative bind source against the cwd."""
    out = []
    for item in spec.split(","):
        key, sep, val = item.partition("=")
        if sep and key.strip().lower() in ("source", "src") and _is_relative_source(val):
            item = f"{key}={os.path.normpath(os.path.join(cwd, val))}"
        out.append(item)
    return ",".join(out)
