"""The OCI runtime config (config.json, runtime-spec 1.x), parsed from hostile JSON.

`parse_spec(obj)` checks every field's type, range and cross-field rule and
returns frozen value classes (portique.oci.value); anything malformed raises `InvalidArgument`
naming the field (`config.json: linux.namespaces[2].type: unknown namespace
type "foo"`). `linux.resources` and `linux.seccomp` are parsed by their own
modules (oci/resources.py, oci/seccomp.py). Pure except `load_spec`, which
reads <bundle>/config.json.
"""

from __future__ import annotations

import os
import posixpath

from portique import jsonc
from portique.errors import InvalidArgument, NotFound, Unsupported
from portique.oci.resources import (
    UINT32_MAX,
    check_bool,
    check_int,
    check_list,
    check_object,
    check_str,
)
from portique.oci.value import field, value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Any, Final

    from _typeshed import StrPath

    from portique.oci.resources import LinuxResources
    from portique.oci.seccomp import LinuxSeccomp

MAX_CONFIG_BYTES: Final = 16 * 1024 * 1024

NAMESPACE_TYPES: Final = frozenset(
    {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}
)
RLIMIT_TYPES: Final = frozenset(
    {
        "RLIMIT_AS",
        "RLIMIT_CORE",
        "RLIMIT_CPU",
        "RLIMIT_DATA",
        "RLIMIT_FSIZE",
        "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_RSS",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
        "RLIMIT_SIGPENDING",
        "RLIMIT_STACK",
    }
)
PROPAGATIONS: Final = frozenset(
    {"", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"}
)
DEVICE_TYPES: Final = frozenset({"c", "b", "u", "p"})
# sysctl prefixes allowed only with a private namespace of the given type
# (runc libcontainer/configs/validate: a host-wide sysctl is refused).
_IPC_SYSCTLS: Final = frozenset(
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
RLIM_INFINITY: Final = 2**64 - 1
# personality(2) execution domains the spec names: PER_LINUX, PER_LINUX32.
PERSONALITY_DOMAINS: Final = {"LINUX": 0x0000, "LINUX32": 0x0008}
# The clocks a time namespace offsets (time_namespaces(7)); CLOCK_REALTIME is not one.
TIME_CLOCKS: Final = frozenset({"monotonic", "boottime"})


@value
class User:
    """process.user: ids, umask and supplementary groups."""

    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


@value
class Capabilities:
    """The five sets, each a tuple of names (CAP_...). An absent set is empty."""

    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@value
class Rlimit:
    """One process.rlimits entry."""

    type: str
    hard: int
    soft: int


@value
class Process:
    """process (or an exec process file): what runs and with which privileges."""

    args: tuple[str, ...]
    cwd: str = "/"
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str = ""
    selinux_label: str = ""


@value
class Root:
    """root: the rootfs path (relative to the bundle) and whether it is read-only."""

    path: str
    readonly: bool = False


@value
class IDMapping:
    """One uid/gid mapping of a user namespace."""

    container_id: int
    host_id: int
    size: int


@value
class Mount:
    """One mounts[] entry; destination is absolute and normalised.

    `idmap`: "" (none), "idmap" or "ridmap" (recursive); the mappings are
    the mount's own, or empty to use the container's user namespace ones.
    """

    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()
    idmap: str = ""
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()


@value
class Hook:
    """One hook: an absolute path, argv, env and an optional timeout in seconds."""

    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@value
class Hooks:
    """hooks: each phase in order."""

    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@value
class Namespace:
    """One linux.namespaces entry; a path means join, no path means create."""

    type: str
    path: str = ""


@value
class Device:
    """One linux.devices entry."""

    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@value
class TimeOffset:
    """One linux.timeOffsets entry: a clock of the time namespace moved by secs+nanosecs."""

    clock: str  # "monotonic" or "boottime"
    secs: int = 0
    nanosecs: int = 0


@value
class Personality:
    """linux.personality: the execution domain (LINUX or LINUX32); no flags exist yet."""

    domain: str

    @property
    def value(self) -> int:
        return PERSONALITY_DOMAINS[self.domain]


@value
class Linux:
    """linux: namespaces, mappings, devices, cgroup, seccomp, masks and sysctl."""

    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    devices: tuple[Device, ...] = ()
    cgroups_path: str | None = None
    resources: LinuxResources | None = None
    seccomp: LinuxSeccomp | None = None
    sysctl: tuple[tuple[str, str], ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    rootfs_propagation: str = ""
    mount_label: str = ""
    time_offsets: tuple[TimeOffset, ...] = ()
    personality: Personality | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def has_new(self, ns_type: str) -> bool:
        """True when the container gets a namespace of its own (not the host's, not joined)."""
        ns = self.namespace(ns_type)
        return ns is not None and not ns.path


@value
class Spec:
    """A parsed config.json."""

    oci_version: str
    root: Root
    process: Process | None = None
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = field(default_factory=Hooks)
    annotations: tuple[tuple[str, str], ...] = ()
    linux: Linux = field(default_factory=Linux)


# ---------------------------------------------------------------- entry points


def load_spec(bundle: StrPath) -> Spec:
    """Read and parse <bundle>/config.json (size-bounded)."""
    return load_spec_and_json(bundle)[0]


def load_spec_and_json(bundle: StrPath) -> tuple[Spec, dict[str, Any]]:
    """The parsed spec and the raw JSON object it came from (kept in the state)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"bundle {bundle}: config.json not found") from None
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None
    return parse_config_bytes(raw, str(path))


def parse_config_bytes(raw: bytes, where: str = "config.json") -> tuple[Spec, dict[str, Any]]:
    """config.json's bytes: the parsed spec and the raw JSON object."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidArgument(f"{where}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        obj = jsonc.loads(raw)
    except (ValueError, RecursionError) as e:  # a thousand nested [ is a RecursionError
        raise InvalidArgument(f"config.json: not valid JSON: {e}") from None
    return parse_spec(obj), obj


def parse_spec(obj: object, source: str = "config.json") -> Spec:
    try:
        return _parse_spec(obj)
    except InvalidArgument as e:
        raise InvalidArgument(f"{source}: {e.message}") from None


def parse_process(obj: object, field: str = "process", *, require_args: bool = True) -> Process:
    d = check_object(obj, field)
    args = _str_list(d.get("args", []), f"{field}.args")
    if require_args and not args:
        raise InvalidArgument(f"{field}.args: must not be empty")
    cwd = check_str(d.get("cwd", "/"), f"{field}.cwd")
    if not cwd.startswith("/"):
        raise InvalidArgument(f"{field}.cwd: {cwd!r} must be an absolute path")
    env = _env(d.get("env", []), f"{field}.env")
    terminal = check_bool(d.get("terminal", False), f"{field}.terminal")
    console_size = None
    if d.get("consoleSize") is not None:
        cs = check_object(d["consoleSize"], f"{field}.consoleSize")
        console_size = (
            check_int(cs.get("height", 0), f"{field}.consoleSize.height", 0, 65535),
            check_int(cs.get("width", 0), f"{field}.consoleSize.width", 0, 65535),
        )
    user = _user(d.get("user", {}), f"{field}.user")
    caps = None
    if d.get("capabilities") is not None:
        caps = _capabilities(d["capabilities"], f"{field}.capabilities")
    rlimits = _rlimits(d.get("rlimits", []), f"{field}.rlimits")
    nnp = check_bool(d.get("noNewPrivileges", False), f"{field}.noNewPrivileges")
    oom = d.get("oomScoreAdj")
    oom_adj = None if oom is None else check_int(oom, f"{field}.oomScoreAdj", -1000, 1000)
    apparmor = check_str(d.get("apparmorProfile", ""), f"{field}.apparmorProfile")
    selinux = check_str(d.get("selinuxLabel", ""), f"{field}.selinuxLabel")
    _refuse_unsupported(d, field, _UNSUPPORTED_PROCESS)
    return Process(
        args=args,
        cwd=cwd,
        env=env,
        terminal=terminal,
        console_size=console_size,
        user=user,
        capabilities=caps,
        rlimits=rlimits,
        no_new_privileges=nnp,
        oom_score_adj=oom_adj,
        apparmor_profile=apparmor,
        selinux_label=selinux,
    )


# ---------------------------------------------------------------- the pieces


def _parse_spec(obj: object) -> Spec:
    d = check_object(obj, "config")
    if "ociVersion" not in d:
        raise InvalidArgument("ociVersion: required")
    version = check_str(d["ociVersion"], "ociVersion", max_len=64)
    if not version.startswith("1."):
        raise InvalidArgument(f"ociVersion: unsupported version {version!r} (want 1.x)")
    if d.get("root") is None:
        raise InvalidArgument("root: required")
    rd = check_object(d["root"], "root")
    root_path = check_str(rd.get("path", ""), "root.path")
    if not root_path:
        raise InvalidArgument("root.path: required")
    root = Root(root_path, check_bool(rd.get("readonly", False), "root.readonly"))
    process = None if d.get("process") is None else parse_process(d["process"])
    hostname = check_str(d.get("hostname", ""), "hostname", max_len=64)
    domainname = check_str(d.get("domainname", ""), "domainname", max_len=64)
    mounts = tuple(
        _mount(m, f"mounts[{i}]") for i, m in enumerate(check_list(d.get("mounts", []), "mounts"))
    )
    hooks = _hooks(d.get("hooks") or {}, "hooks")
    annotations = tuple(sorted(_str_map(d.get("annotations") or {}, "annotations").items()))
    from portique.oci.runtime_linux import parse_linux

    linux = parse_linux(d.get("linux") or {}, "linux")
    spec = Spec(version, root, process, hostname, domainname, mounts, hooks, annotations, linux)
    _cross_check(spec)
    return spec


def _cross_check(spec: Spec) -> None:
    lx = spec.linux
    if (lx.uid_mappings or lx.gid_mappings) and not lx.has_new("user"):
        raise InvalidArgument(
            "linux.uidMappings: user namespace mappings given without a new user namespace"
        )
    if lx.has_new("user") and not (lx.uid_mappings and lx.gid_mappings):
        raise InvalidArgument("linux.uidMappings: a new user namespace needs uid and gid mappings")
    # A uts namespace joined by path is the container's own too (a pod's
    # shared one): only sharing the runtime's (the host's) is refused, here
    # when no uts namespace is listed, at create when the path is the host's.
    if spec.hostname and lx.namespace("uts") is None:
        raise InvalidArgument("hostname: cannot set a hostname without a private uts namespace")
    if spec.domainname and lx.namespace("uts") is None:
        raise InvalidArgument("domainname: cannot set a domainname without a private uts namespace")
    if lx.time_offsets and not lx.has_new("time"):
        raise InvalidArgument(
            "linux.timeOffsets: needs a new time namespace (a time entry without a path)"
        )
    for i, m in enumerate(spec.mounts):
        if m.idmap and not (m.uid_mappings or lx.has_new("user")):
            raise InvalidArgument(
                f"mounts[{i}]: {m.idmap} without uidMappings needs a new user namespace"
            )
    for key, _ in lx.sysctl:
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if not lx.has_new("ipc"):
                raise InvalidArgument(f"linux.sysctl.{key}: needs a private ipc namespace")
        elif key.startswith("net."):
            if lx.namespace("network") is None:
                raise InvalidArgument(f"linux.sysctl.{key}: needs a private network namespace")
        elif key in ("kernel.hostname", "kernel.domainname"):
            if not lx.has_new("uts"):
                raise InvalidArgument(f"linux.sysctl.{key}: needs a private uts namespace")
        else:
            raise InvalidArgument(f"linux.sysctl.{key}: not in a namespace the container owns")
    if lx.rootfs_propagation and lx.namespace("mount") is None:
        raise InvalidArgument("linux.rootfsPropagation: needs a mount namespace")
    for i, m in enumerate(spec.mounts):
        if m.type == "cgroup" and lx.namespace("mount") is None:
            raise InvalidArgument(f"mounts[{i}]: a cgroup mount needs a mount namespace")


def _str_list(obj: object, field: str, limit: int = 65536) -> tuple[str, ...]:
    return tuple(
        check_str(v, f"{field}[{i}]", max_len=131072)
        for i, v in enumerate(check_list(obj, field, limit=limit))
    )


def _str_map(obj: object, field: str) -> dict[str, str]:
    d = check_object(obj, field)
    return {check_str(k, field): check_str(v, f"{field}.{k}", max_len=65536) for k, v in d.items()}


def _env(obj: object, field: str) -> tuple[str, ...]:
    env = _str_list(obj, field)
    for i, kv in enumerate(env):
        if "=" not in kv or kv.startswith("="):
            raise InvalidArgument(f"{field}[{i}]: {kv!r} is not of the form KEY=value")
    return env


def _abs_path(obj: object, field: str) -> str:
    p = check_str(obj, field)
    if not p.startswith("/"):
        raise InvalidArgument(f"{field}: {p!r} must be an absolute path")
    return p


def _uint32(obj: object, field: str) -> int:
    return check_int(obj, field, 0, UINT32_MAX)


def _user(obj: object, field: str) -> User:
    d = check_object(obj, field)
    umask = d.get("umask")
    return User(
        uid=_uint32(d.get("uid", 0), f"{field}.uid"),
        gid=_uint32(d.get("gid", 0), f"{field}.gid"),
        umask=None if umask is None else check_int(umask, f"{field}.umask", 0, 0o777),
        additional_gids=tuple(
            _uint32(g, f"{field}.additionalGids[{i}]")
            for i, g in enumerate(
                check_list(d.get("additionalGids") or [], f"{field}.additionalGids")
            )
        ),
    )


def _capabilities(obj: object, field: str) -> Capabilities:
    from portique.linux.caps import CAP_NUMBERS

    d = check_object(obj, field)
    sets: dict[str, tuple[str, ...]] = {}
    for key in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        names = _str_list(d.get(key) or [], f"{field}.{key}", limit=128)
        for i, name in enumerate(names):
            if name not in CAP_NUMBERS:
                raise InvalidArgument(f"{field}.{key}[{i}]: unknown capability {name!r}")
        sets[key] = names
    return Capabilities(**sets)


def _rlimits(obj: object, field: str) -> tuple[Rlimit, ...]:
    out: list[Rlimit] = []
    seen: set[str] = set()
    for i, r in enumerate(check_list(obj, field, limit=64)):
        f = f"{field}[{i}]"
        d = check_object(r, f)
        kind = check_str(d.get("type", ""), f"{f}.type")
        if kind not in RLIMIT_TYPES:
            raise InvalidArgument(f"{f}.type: unknown rlimit {kind!r}")
        if kind in seen:
            raise InvalidArgument(f"{f}.type: duplicate rlimit {kind}")
        seen.add(kind)
        hard = check_int(d.get("hard"), f"{f}.hard", 0, RLIM_INFINITY)
        soft = check_int(d.get("soft"), f"{f}.soft", 0, RLIM_INFINITY)
        if soft > hard:
            raise InvalidArgument(f"{f}.soft: {soft} is above the hard limit {hard}")
        out.append(Rlimit(kind, hard, soft))
    return tuple(out)


def _mount(obj: object, field: str) -> Mount:
    d = check_object(obj, field)
    if "destination" not in d:
        raise InvalidArgument(f"{field}.destination: required")
    dest = check_str(d["destination"], f"{field}.destination")
    if not dest:
        raise InvalidArgument(f"{field}.destination: must not be empty")
    # Relative destinations are read as relative to the container's root,
    # as runc does; ".." cannot escape because targets resolve inside the root.
    dest = posixpath.normpath("/" + dest.lstrip("/"))
    kind = check_str(d.get("type", ""), f"{field}.type", max_len=64)
    source = check_str(d.get("source", ""), f"{field}.source")
    options = _str_list(d.get("options", []), f"{field}.options", limit=256)
    is_bind = kind == "bind" or "bind" in options or "rbind" in options
    if is_bind and not source:
        raise InvalidArgument(f"{field}.source: a bind mount needs a source")
    if not is_bind and not kind:
        raise InvalidArgument(f"{field}.type: required for a non-bind mount")
    uid_maps = _mappings(d.get("uidMappings") or [], f"{field}.uidMappings")
    gid_maps = _mappings(d.get("gidMappings") or [], f"{field}.gidMappings")
    if bool(uid_maps) != bool(gid_maps):
        raise InvalidArgument(f"{field}.uidMappings: uidMappings and gidMappings go together")
    idmap = "ridmap" if "ridmap" in options else "idmap" if "idmap" in options else ""
    if uid_maps and not idmap:
        idmap = "idmap"  # the spec asks for the option; mappings alone still mean it
    if idmap and not is_bind:
        raise InvalidArgument(f"{field}: {idmap} is supported on bind mounts only")
    return Mount(dest, kind, source, options, idmap, uid_maps, gid_maps)


def _hooks(obj: object, field: str) -> Hooks:
    d = check_object(obj, field)
    keys = {
        "prestart": "prestart",
        "createRuntime": "create_runtime",
        "createContainer": "create_container",
        "startContainer": "start_container",
        "poststart": "poststart",
        "poststop": "poststop",
    }
    out: dict[str, tuple[Hook, ...]] = {}
    for key, attr in keys.items():
        out[attr] = tuple(
            _hook(h, f"{field}.{key}[{i}]")
            for i, h in enumerate(check_list(d.get(key) or [], f"{field}.{key}", limit=256))
        )
    return Hooks(**out)


def _hook(obj: object, field: str) -> Hook:
    d = check_object(obj, field)
    timeout = d.get("timeout")
    return Hook(
        path=_abs_path(d.get("path", ""), f"{field}.path"),
        args=_str_list(d.get("args") or [], f"{field}.args"),
        env=_env(d.get("env") or [], f"{field}.env"),
        timeout=None if timeout is None else check_int(timeout, f"{field}.timeout", 1, 86400),
    )


# Properties the spec defines that this runtime does not implement: present,
# they are refused (the spec: an unsupported value MUST be an error), never
# silently ignored like the unknown properties the spec tells us to skip.
_UNSUPPORTED_LINUX: Final = {
    "intelRdt": "Intel RDT (resctrl)",
    "memoryPolicy": "NUMA memory policies",
    "netDevices": "moving network devices into the container",
}
_UNSUPPORTED_PROCESS: Final = {
    "scheduler": "scheduling policies",
    "ioPriority": "I/O priorities",
    "execCPUAffinity": "CPU affinity for exec",
}


def _refuse_unsupported(d: dict[str, object], field: str, table: dict[str, str]) -> None:
    for key, what in table.items():
        if d.get(key) is not None:
            raise Unsupported(f"{field}.{key}: not supported by portique-runtime ({what})")


def _mappings(obj: object, field: str) -> tuple[IDMapping, ...]:
    out = []
    for i, m in enumerate(check_list(obj, field, limit=340)):
        f = f"{field}[{i}]"
        d = check_object(m, f)
        size = _uint32(d.get("size"), f"{f}.size")
        if size == 0:
            raise InvalidArgument(f"{f}.size: must be positive")
        out.append(
            IDMapping(
                _uint32(d.get("containerID"), f"{f}.containerID"),
                _uint32(d.get("hostID"), f"{f}.hostID"),
                size,
            )
        )
    return tuple(out)


__all__ = [
    "Capabilities",
    "Device",
    "Hook",
    "Hooks",
    "IDMapping",
    "Linux",
    "Mount",
    "Namespace",
    "Personality",
    "Process",
    "Rlimit",
    "Root",
    "Spec",
    "TimeOffset",
    "User",
    "load_spec",
    "parse_config_bytes",
    "parse_process",
    "parse_spec",
]
