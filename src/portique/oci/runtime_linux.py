"""The `linux` section of config.json, parsed from hostile JSON (see oci/runtime.py).

Split from oci/runtime.py, which holds the value classes and the entry points.
"""

from __future__ import annotations

import posixpath

from portique.errors import InvalidArgument
from portique.oci.resources import check_int, check_list, check_object, check_str
from portique.oci.runtime import (
    _UNSUPPORTED_LINUX,
    DEVICE_TYPES,
    NAMESPACE_TYPES,
    PERSONALITY_DOMAINS,
    PROPAGATIONS,
    TIME_CLOCKS,
    Device,
    Linux,
    Namespace,
    Personality,
    TimeOffset,
    _abs_path,
    _mappings,
    _refuse_unsupported,
    _str_list,
    _str_map,
    _uint32,
)


def parse_linux(obj: object, field: str) -> Linux:
    """linux -> Linux; errors name the field."""
    d = check_object(obj, field)
    namespaces: list[Namespace] = []
    seen: set[str] = set()
    for i, n in enumerate(check_list(d.get("namespaces") or [], f"{field}.namespaces", limit=16)):
        f = f"{field}.namespaces[{i}]"
        nd = check_object(n, f)
        kind = check_str(nd.get("type", ""), f"{f}.type", max_len=64)
        if kind not in NAMESPACE_TYPES:
            raise InvalidArgument(f'{f}.type: unknown namespace type "{kind}"')
        if kind in seen:
            raise InvalidArgument(f"{f}.type: duplicate namespace {kind}")
        seen.add(kind)
        path = nd.get("path", "")
        namespaces.append(Namespace(kind, _abs_path(path, f"{f}.path") if path else ""))
    resources = None
    if d.get("resources") is not None:
        from portique.oci.resources import parse_resources

        resources = parse_resources(d["resources"], f"{field}.resources")
    seccomp = None
    if d.get("seccomp") is not None:
        from portique.oci.seccomp import parse_seccomp

        seccomp = parse_seccomp(d["seccomp"], f"{field}.seccomp")
    _refuse_unsupported(d, field, _UNSUPPORTED_LINUX)
    cgroups_path = d.get("cgroupsPath")
    propagation = check_str(d.get("rootfsPropagation", ""), f"{field}.rootfsPropagation")
    if propagation not in PROPAGATIONS:
        raise InvalidArgument(f"{field}.rootfsPropagation: unknown propagation {propagation!r}")
    return Linux(
        namespaces=tuple(namespaces),
        uid_mappings=_mappings(d.get("uidMappings") or [], f"{field}.uidMappings"),
        gid_mappings=_mappings(d.get("gidMappings") or [], f"{field}.gidMappings"),
        devices=tuple(
            _device(v, f"{field}.devices[{i}]")
            for i, v in enumerate(check_list(d.get("devices") or [], f"{field}.devices"))
        ),
        cgroups_path=None
        if cgroups_path is None
        else check_str(cgroups_path, f"{field}.cgroupsPath"),
        resources=resources,
        seccomp=seccomp,
        sysctl=tuple(sorted(_str_map(d.get("sysctl") or {}, f"{field}.sysctl").items())),
        masked_paths=tuple(
            _abs_path(p, f"{field}.maskedPaths[{i}]")
            for i, p in enumerate(check_list(d.get("maskedPaths") or [], f"{field}.maskedPaths"))
        ),
        readonly_paths=tuple(
            _abs_path(p, f"{field}.readonlyPaths[{i}]")
            for i, p in enumerate(
                check_list(d.get("readonlyPaths") or [], f"{field}.readonlyPaths")
            )
        ),
        rootfs_propagation=propagation,
        mount_label=check_str(d.get("mountLabel", ""), f"{field}.mountLabel"),
        time_offsets=_time_offsets(d.get("timeOffsets"), f"{field}.timeOffsets"),
        personality=_personality(d.get("personality"), f"{field}.personality"),
    )


def _time_offsets(obj: object, field: str) -> tuple[TimeOffset, ...]:
    if obj is None:
        return ()
    out = []
    for clock, v in sorted(check_object(obj, field).items()):
        f = f"{field}.{clock}"
        if clock not in TIME_CLOCKS:
            raise InvalidArgument(f"{f}: a time namespace offsets monotonic and boottime only")
        d = check_object(v, f)
        out.append(
            TimeOffset(
                clock,
                check_int(d.get("secs", 0), f"{f}.secs"),
                check_int(d.get("nanosecs", 0), f"{f}.nanosecs", 0, 999_999_999),
            )
        )
    return tuple(out)


def _personality(obj: object, field: str) -> Personality | None:
    if obj is None:
        return None
    d = check_object(obj, field)
    domain = check_str(d.get("domain", ""), f"{field}.domain", max_len=64)
    if domain not in PERSONALITY_DOMAINS:
        raise InvalidArgument(f"{field}.domain: {domain!r} is not LINUX or LINUX32")
    flags = _str_list(d.get("flags") or [], f"{field}.flags", limit=64)
    if flags:
        # The spec defines no flag yet; one we do not know cannot be honoured.
        raise InvalidArgument(f"{field}.flags: {flags[0]!r} is not supported")
    return Personality(domain)


def _device(obj: object, field: str) -> Device:
    d = check_object(obj, field)
    kind = check_str(d.get("type", ""), f"{field}.type", max_len=1)
    if kind not in DEVICE_TYPES:
        raise InvalidArgument(f"{field}.type: unknown device type {kind!r}")
    path = _abs_path(d.get("path", ""), f"{field}.path")
    if posixpath.normpath(path) in ("/", "/dev"):
        raise InvalidArgument(f"{field}.path: {path!r} is not a device path")
    major = minor = 0
    if kind != "p":
        if "major" not in d or "minor" not in d:
            raise InvalidArgument(f"{field}: a {kind} device needs major and minor")
        major = check_int(d["major"], f"{field}.major", 0, 2**32 - 1)
        minor = check_int(d["minor"], f"{field}.minor", 0, 2**32 - 1)
    mode = d.get("fileMode")
    uid, gid = d.get("uid"), d.get("gid")
    return Device(
        kind,
        posixpath.normpath(path),
        major,
        minor,
        None if mode is None else check_int(mode, f"{field}.fileMode", 0, 0o7777),
        None if uid is None else _uint32(uid, f"{field}.uid"),
        None if gid is None else _uint32(gid, f"{field}.gid"),
    )


__all__ = ["parse_linux"]
