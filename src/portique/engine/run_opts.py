"""Parsing of the further `run`/`create` flags: devices and their I/O limits,
sysctls, namespace modes, logging, label files, the refused ones, and the
host checks of limits a host may not honour.

Values are checked here and stored in Docker's HostConfig shapes; config.py
turns them into the OCI spec. Every bad value is one InvalidArgument.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from portique.engine.resource_opts import bad_flag, parse_size
from portique.errors import InvalidArgument, shown
from portique.oci.value import value

# ------------------------------------------------------------------ devices


@value
class HostDevice:
    """A device node of the host, as the spec's linux.devices needs it."""

    path: str
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int


def stat_device(path: str, flag: str = "--device") -> HostDevice:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(
            f"error gathering device information while adding custom device {shown(path)}:"
            f" {exc.strerror.lower() if exc.strerror else exc}"
        ) from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"{flag} {shown(path)}: not a device node")
    return HostDevice(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev), st.st_mode & 0o7777)


def _valid_permissions(p: str) -> bool:
    return bool(p) and len(p) <= 3 and all(c in "rwm" for c in p) and len(set(p)) == len(p)


def parse_device(spec: str) -> dict[str, str]:
    """--device /dev/host[:/dev/container][:rwm] -> HostConfig.Devices entry."""
    parts = spec.split(":")
    perms = "rwm"
    if len(parts) > 1 and _valid_permissions(parts[-1]) and not parts[-1].startswith("/"):
        perms = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise bad_flag("--device", spec, f"bad format for path: {spec}")
    host = parts[0]
    inner = parts[1] if len(parts) == 2 else host
    for p in (host, inner):
        if not p.startswith("/") or "\0" in p:
            raise bad_flag("--device", spec, f"{p} is not an absolute path")
    return {
        "PathOnHost": os.path.normpath(host),
        "PathInContainer": os.path.normpath(inner),
        "CgroupPermissions": perms,
    }


def parse_throttle(spec: str, flag: str, *, bytes_rate: bool) -> dict[str, Any]:
    """--device-read-bps /dev/sda:1mb, --device-read-iops /dev/sda:1000."""
    path, sep, rate_s = spec.rpartition(":")
    if not sep or not path.startswith("/"):
        raise bad_flag(flag, spec, f"bad format: {spec}")
    if bytes_rate:
        rate = parse_size(rate_s, flag)
    else:
        if not rate_s.isdigit():
            raise bad_flag(flag, spec, f"invalid rate for device: {spec}. The correct format is"
                           " <device-path>:<number>. Number must be a positive integer")  # fmt: skip
        rate = int(rate_s)
    if rate <= 0 or rate >= 1 << 63:
        raise bad_flag(flag, spec, "the rate must be a positive integer")
    return {"Path": path, "Rate": rate}


THROTTLE_FLAGS: Mapping[str, tuple[str, str, bool]] = {
    # flag attribute -> (flag, HostConfig key, bytes rate?)
    "device_read_bps": ("--device-read-bps", "BlkioDeviceReadBps", True),
    "device_write_bps": ("--device-write-bps", "BlkioDeviceWriteBps", True),
    "device_read_iops": ("--device-read-iops", "BlkioDeviceReadIOps", False),
    "device_write_iops": ("--device-write-iops", "BlkioDeviceWriteIOps", False),
}
# HostConfig key -> the spec's linux.resources.blockIO key
THROTTLE_SPEC_KEYS: Mapping[str, str] = {
    "BlkioDeviceReadBps": "throttleReadBpsDevice",
    "BlkioDeviceWriteBps": "throttleWriteBpsDevice",
    "BlkioDeviceReadIOps": "throttleReadIOPSDevice",
    "BlkioDeviceWriteIOps": "throttleWriteIOPSDevice",
}


MAX_DIR_DEVICES = 1024


def _dir_devices(top: str) -> dict[str, HostDevice]:
    """`--device /dev/snd`: every device node under a directory (Docker's rule),
    symlinks not followed, bounded."""
    out: dict[str, HostDevice] = {}
    seen = 0
    for dirpath, _dirs, files in os.walk(top):
        seen += len(files) + len(_dirs)
        if seen > 16 * MAX_DIR_DEVICES:
            raise InvalidArgument(f"--device {shown(top)}: too many entries to be a device tree")
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out[path] = stat_device(path)
            if len(out) > MAX_DIR_DEVICES:
                raise InvalidArgument(f"--device {shown(top)}: more than {MAX_DIR_DEVICES} devices")
    if not out:
        raise InvalidArgument(f"--device {shown(top)}: no device node in this directory")
    return out


def host_devices(host: Mapping[str, Any]) -> dict[str, HostDevice]:
    """Every host path HostConfig names as a device (Devices, throttles), stat'ed
    (a directory: the device nodes under it); throttled devices must be block
    devices."""
    out: dict[str, HostDevice] = {}
    for d in host.get("Devices") or ():
        path = str(d.get("PathOnHost") or "")
        if os.path.isdir(path) and not os.path.islink(path):
            out.update(_dir_devices(path))
        else:
            out[path] = stat_device(path)
    for key in THROTTLE_SPEC_KEYS:
        for t in host.get(key) or ():
            path = str(t.get("Path") or "")
            dev = stat_device(path, "--device-*-bps/iops")
            if dev.kind != "b":
                raise InvalidArgument(f"{shown(path)} is not a block device: I/O limits need one")
            out[path] = dev
    return out


def device_nodes(
    host: Mapping[str, Any], devices: Mapping[str, HostDevice]
) -> list[tuple[HostDevice, str, str]]:
    """(device, path in the container, cgroup permissions) for each --device,
    a directory's nodes at the same places under its PathInContainer."""
    out = []
    for d in host.get("Devices") or ():
        src, dst, perms = d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]
        if src in devices:
            out.append((devices[src], dst, perms))
            continue
        for path, dev in devices.items():
            if path.startswith(src.rstrip("/") + "/"):
                out.append((dev, dst.rstrip("/") + path[len(src.rstrip("/")) :], perms))
    return out


# ------------------------------------------------------------------ sysctls

_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


def parse_sysctls(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key or any(c.isspace() or c == "/" for c in key) or "\n" in val:
            raise bad_flag("--sysctl", item, f"{item} is not a valid sysctl (KEY=VALUE)")
        out[key] = val
    return out


def check_sysctls(sysctls: Mapping[str, str], host: Mapping[str, Any]) -> None:
    """Docker's whitelist: namespaced sysctls only, and not with the host's namespace."""
    for key in sysctls:
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if str(host.get("IpcMode") or "") == "host" or str(
                host.get("IpcMode") or ""
            ).startswith("container:"):
                raise InvalidArgument(f"sysctl {shown(key)} is not allowed with --ipc host")
        elif key.startswith("net."):
            mode = str(host.get("NetworkMode") or "")
            if mode == "host" or mode.startswith("container:"):
                raise InvalidArgument(
                    f"sysctl {shown(key)} is not allowed in host network namespace"
                )
        else:
            raise InvalidArgument(f"sysctl {shown(key)} is not whitelisted")


# -------------------------------------------------------------- namespaces


def parse_ns_mode(value: str, flag: str, allowed: Iterable[str], container: bool) -> str:
    if not value:
        return ""
    if value in allowed or (container and value.startswith("container:") and value[10:]):
        return value
    raise bad_flag(flag, value, f"invalid {flag.lstrip('-')} mode: {value}")


def namespace_modes(args: Any) -> dict[str, str]:
    return {
        "PidMode": parse_ns_mode(args.pid, "--pid", ("host",), True),
        "IpcMode": parse_ns_mode(args.ipc, "--ipc", ("host", "private", "shareable", "none"), True),
        "UTSMode": parse_ns_mode(args.uts, "--uts", ("host",), False),
        "UsernsMode": parse_ns_mode(args.userns, "--userns", ("host",), False),
        "CgroupnsMode": parse_ns_mode(args.cgroupns, "--cgroupns", ("host", "private"), False),
    }


# ------------------------------------------------------------------ logging

LOG_DRIVERS = ("json-file", "local", "none")
_LOG_OPTS = ("max-size", "max-file", "compress", "mode", "labels", "env", "tag")


def parse_log_config(driver: str, opts: Iterable[str]) -> dict[str, Any]:
    driver = driver or "json-file"
    if driver not in LOG_DRIVERS:
        raise InvalidArgument(
            f"logging driver {shown(driver)} is not supported: use json-file, local or none"
        )
    config: dict[str, str] = {}
    for item in opts:
        key, sep, val = item.partition("=")
        if not sep or key not in _LOG_OPTS:
            raise InvalidArgument(f"unknown log opt {shown(key)} for {driver} log driver")
        config[key] = val
    if driver == "none" and config:
        raise InvalidArgument("the none log driver takes no log options")
    if "max-size" in config and parse_size(config["max-size"], "--log-opt max-size") <= 0:
        raise InvalidArgument("max-size must be a positive number")
    if "max-file" in config:
        n = config["max-file"]
        if not n.isdigit() or int(n) < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        if int(n) > 1 and "max-size" not in config:
            raise InvalidArgument("max-file cannot be set without max-size")
    return {"Type": driver, "Config": config}


@value
class Rotation:
    max_size: int = 0  # bytes; 0 = never rotate
    max_file: int = 1


def rotation_of(log_config: Mapping[str, Any] | None) -> Rotation:
    conf = (log_config or {}).get("Config") or {}
    kind = (log_config or {}).get("Type") or "json-file"
    size = parse_size(str(conf["max-size"])) if conf.get("max-size") else 0
    files = int(conf.get("max-file") or 1)
    if kind == "local" and not size:
        # Docker's local driver defaults: 20 MB, 5 files.
        size, files = 20 << 20, int(conf.get("max-file") or 5)
    return Rotation(size, files)


# ---------------------------------------------------------------- labels


def read_label_files(paths: Iterable[str]) -> list[str]:
    """--label-file: KEY=VALUE lines, # comments and blank lines skipped."""
    out: list[str] = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read((1 << 20) + 1)
        except OSError as exc:
            raise InvalidArgument(f"cannot read label file {path}: {exc.strerror}") from None
        if len(data) > 1 << 20:
            raise InvalidArgument(f"label file {path} is larger than 1 MiB")
        for raw in data.decode("utf-8", "replace").splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


# ------------------------------------------------------------------ refusals


def refuse_unsupported(args: Any) -> None:
    if getattr(args, "gpus", None):
        raise InvalidArgument("--gpus: this engine has no GPU support")
    if getattr(args, "storage_opt", None):
        raise InvalidArgument(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option;"
            " this engine's storage cannot set a per-container size"
        )


# ----------------------------------------------------------- host support


def _cgroup_version() -> str:
    from portique.runtime.cgroups.base import detect

    return detect()


def _v1_file(controller: str, name: str, root: Path = Path("/sys/fs/cgroup")) -> bool:
    return (root / controller / name).exists()


def check_host_support(host: Mapping[str, Any]) -> None:
    """Limits this host's cgroups cannot honour are refused, one line each
    (Docker warns and drops them; silently ignoring a limit is worse)."""
    nano = int(host.get("NanoCpus") or 0)
    cpus = len(os.sched_getaffinity(0))
    if nano > cpus * 1_000_000_000:
        raise InvalidArgument(
            f"range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )
    wants = {
        "OomKillDisable": bool(host.get("OomKillDisable")),
        "MemorySwappiness": host.get("MemorySwappiness") not in (None, -1),
        "BlkioWeight": bool(host.get("BlkioWeight")),
        "MemorySwap": int(host.get("MemorySwap") or 0) > 0,
        "Throttle": any(host.get(k) for k in THROTTLE_SPEC_KEYS),
    }
    if not any(wants.values()):
        return
    v = _cgroup_version()
    if v == "v2":
        if wants["OomKillDisable"]:
            raise InvalidArgument(
                "--oom-kill-disable: cgroup v2 has no switch to disable the OOM killer"
            )
        if wants["MemorySwappiness"]:
            raise InvalidArgument("--memory-swappiness: cgroup v2 has no per-cgroup swappiness")
        controllers = _read("/sys/fs/cgroup/cgroup.controllers").split()
        if (wants["BlkioWeight"] or wants["Throttle"]) and "io" not in controllers:
            raise InvalidArgument("--blkio-weight/--device-*: this host has no io controller")
        return
    if wants["MemorySwap"] and not _v1_file("memory", "memory.memsw.limit_in_bytes"):
        raise InvalidArgument("--memory-swap: this kernel has no swap accounting (swapaccount=1)")
    if wants["BlkioWeight"] and not (
        _v1_file("blkio", "blkio.weight") or _v1_file("blkio", "blkio.bfq.weight")
    ):
        raise InvalidArgument(
            "--blkio-weight: this host's block I/O controller has no weight"
            " (no CFQ or BFQ scheduler)"
        )
    if wants["Throttle"] and not _v1_file("blkio", "blkio.throttle.read_bps_device"):
        raise InvalidArgument("--device-read-bps and the like: this host has no blkio throttling")


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


# ------------------------------------------------------------ small values


def expose_ports(spec: str) -> list[str]:
    """--expose 80, 80/udp, 8000-8010/tcp -> ExposedPorts keys."""
    ports, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise bad_flag("--expose", spec, f"invalid proto: {proto}")
    lo_s, _, hi_s = ports.partition("-")
    if not lo_s.isdigit() or (hi_s and not hi_s.isdigit()):
        raise bad_flag("--expose", spec, f"invalid range format for --expose: {spec}")
    lo, hi = int(lo_s), int(hi_s or lo_s)
    if not 0 < lo <= hi <= 65535:
        raise bad_flag("--expose", spec, f"invalid range format for --expose: {spec}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def parse_mac(value: str) -> str:
    parts = value.split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    ):
        raise InvalidArgument(f"{shown(value)} is not a valid mac address")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"{shown(value)} is a multicast address: not for an interface")
    return value.lower()


def parse_cgroup_parent(value: str) -> str:
    """--cgroup-parent: always nested under portique's own parent cgroup
    (`/portique/<parent>/<id>`), since portique touches no cgroup outside it;
    a leading "/" or a `portique/` prefix names the same place."""
    rel = value.strip("/").removeprefix("portique/")
    if rel == "portique":
        rel = ""
    parts = rel.split("/") if rel else []
    if any(p in ("", ".", "..") or "\0" in p or "\n" in p for p in parts):
        raise bad_flag("--cgroup-parent", value, "a cgroup path of plain names")
    return "/".join(parts)


def cgroups_path(host: Mapping[str, Any], container_id: str) -> str:
    parent = str(host.get("CgroupParent") or "")
    return "/".join(["", "portique", *([parent] if parent else []), container_id])


def parse_runtime(value: str) -> str:
    """--runtime NAME|PATH: portique's own runtime, or another OCI runtime found on
    PATH (runc, crun) or by absolute path; checked now, not at start."""
    if value in ("portique", "portique-runtime"):
        return ""
    import shutil

    path = value if value.startswith("/") else shutil.which(value)
    if not path or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise InvalidArgument(f"unknown or invalid runtime name: {shown(value)}")
    return path


# ------------------------------------------------- HostConfig from any face


def _str_list(host: Mapping[str, Any], key: str) -> list[str]:
    v = host.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"HostConfig.{key} must be a list of strings")
    return list(v)


def _int_field(host: Mapping[str, Any], key: str, lo: int, hi: int) -> None:
    v = host.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InvalidArgument(f"HostConfig.{key} must be an integer from {lo} to {hi}")


def check_host_config(host: Mapping[str, Any]) -> None:
    """The fields of issue 13's flags as any face may send them (the API's JSON
    is hostile): shapes and ranges checked once, at create, so start and the
    spec builder can trust them."""
    for key in ("GroupAdd", "VolumesFrom", "Links"):
        _str_list(host, key)
    for key, args in (
        ("PidMode", ("--pid", ("host",), True)),
        ("IpcMode", ("--ipc", ("host", "private", "shareable", "none"), True)),
        ("UTSMode", ("--uts", ("host",), False)),
        ("UsernsMode", ("--userns", ("host",), False)),
        ("CgroupnsMode", ("--cgroupns", ("host", "private"), False)),
    ):
        mode = host.get(key) or ""
        if not isinstance(mode, str):
            raise InvalidArgument(f"HostConfig.{key} must be a string")
        flag, allowed, container = args
        parse_ns_mode(mode, str(flag), tuple(allowed), bool(container))
    devices = host.get("Devices") or []
    if not isinstance(devices, list):
        raise InvalidArgument("HostConfig.Devices must be a list")
    for d in devices:
        if not isinstance(d, Mapping) or not all(
            isinstance(d.get(k), str)
            for k in ("PathOnHost", "PathInContainer", "CgroupPermissions")
        ):
            raise InvalidArgument("HostConfig.Devices entries need PathOnHost, PathInContainer"
                                  " and CgroupPermissions strings")  # fmt: skip
        parse_device(f"{d['PathOnHost']}:{d['PathInContainer']}:{d['CgroupPermissions']}")
    for key in THROTTLE_SPEC_KEYS:
        entries = host.get(key) or []
        if not isinstance(entries, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("Path"), str)
            and isinstance(t.get("Rate"), int) and not isinstance(t.get("Rate"), bool)
            and 0 < t["Rate"] < 1 << 63 for t in entries
        ):  # fmt: skip
            raise InvalidArgument(f"HostConfig.{key} entries need a Path and a positive Rate")
    sysctls = host.get("Sysctls") or {}
    if not isinstance(sysctls, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in sysctls.items()
    ):
        raise InvalidArgument("HostConfig.Sysctls must map strings to strings")
    parse_sysctls(f"{k}={v}" for k, v in sysctls.items())
    _int_field(host, "ShmSize", 0, 1 << 62)
    _int_field(host, "OomScoreAdj", -1000, 1000)
    _int_field(host, "MemoryReservation", 0, 1 << 62)
    _int_field(host, "MemorySwappiness", -1, 100)
    _int_field(host, "CpuPeriod", 0, 1_000_000)
    _int_field(host, "CpuQuota", -1, 1 << 62)
    _int_field(host, "BlkioWeight", 0, 1000)
    for key in ("CgroupParent", "Runtime", "CpusetMems"):
        if not isinstance(host.get(key) or "", str):
            raise InvalidArgument(f"HostConfig.{key} must be a string")
    if host.get("CgroupParent"):
        parse_cgroup_parent(host["CgroupParent"])  # create stores its normal form
    log = host.get("LogConfig")
    if log is not None:
        conf = log.get("Config") if isinstance(log, Mapping) else None
        if not isinstance(log, Mapping) or not isinstance(conf or {}, Mapping):
            raise InvalidArgument("HostConfig.LogConfig must be {Type, Config}")
        parse_log_config(str(log.get("Type") or ""), [f"{k}={v}" for k, v in (conf or {}).items()])


def check_at_create(eng: Any, host: dict[str, Any]) -> None:
    """What `create` checks of these fields (any face): shapes, the normal form of
    CgroupParent, linked containers that exist on a network mode that allows
    links, devices that exist, namespaced sysctls, limits the host can honour."""
    from portique.engine import db
    from portique.engine import network as enet

    check_host_config(host)
    if host.get("CgroupParent"):
        host["CgroupParent"] = parse_cgroup_parent(host["CgroupParent"])
    for link in host.get("Links") or ():
        if enet.mode_of(host) in enet.LOCAL_MODES or enet.joined_container(host):
            raise InvalidArgument("conflicting options: links need a bridge or user network")
        db.resolve_container(eng.db, enet.parse_link(str(link))[0])
    host_devices(host)
    check_sysctls(host.get("Sysctls") or {}, host)
    check_host_support(host)
