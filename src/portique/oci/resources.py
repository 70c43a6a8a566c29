"""`linux.resources` of an OCI runtime config, parsed from hostile JSON.

`parse_resources(obj, field)` checks every value's type and range and returns
frozen value classes; anything malformed raises `InvalidArgument` naming the
field ("linux.resources.memory.limit: must be an integer"). Pure: no I/O.

Names follow Python (snake_case); the comments give the OCI spelling.
Unknown keys are ignored, as the runtime spec requires of a runtime.
Absent values are `None`: "do not touch this knob", which is not the same as
"unlimited" (-1 where the spec allows it).

Every known value is kept, none is type-checked and dropped: the spec says
a value the runtime cannot honour MUST produce an error, and only the
cgroup driver knows what its host can do (runtime/cgroups/v1.py, v2.py
refuse the rest, naming the field).
"""

from __future__ import annotations

from portique.errors import InvalidArgument
from portique.oci.value import value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
UINT32_MAX: Final = 2**32 - 1

# ---------------------------------------------------------------- JSON helpers
# Shared with oci/seccomp.py: small checks that name the field they reject.


def check_object(obj: object, field: str) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{field}: must be an object")
    return obj


def check_list(obj: object, field: str, *, limit: int = 4096) -> list[object]:
    if not isinstance(obj, list):
        raise InvalidArgument(f"{field}: must be an array")
    if len(obj) > limit:
        raise InvalidArgument(f"{field}: more than {limit} entries")
    return obj


def check_int(obj: object, field: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    # bool is an int in Python but never a number in JSON.
    if isinstance(obj, bool) or not isinstance(obj, int):
        raise InvalidArgument(f"{field}: must be an integer")
    if not lo <= obj <= hi:
        raise InvalidArgument(f"{field}: {obj} is out of range [{lo}, {hi}]")
    return obj


def check_str(obj: object, field: str, *, max_len: int = 4096) -> str:
    if not isinstance(obj, str):
        raise InvalidArgument(f"{field}: must be a string")
    if len(obj) > max_len:
        raise InvalidArgument(f"{field}: longer than {max_len} characters")
    if "\x00" in obj:
        raise InvalidArgument(f"{field}: contains a NUL byte")
    return obj


def check_bool(obj: object, field: str) -> bool:
    if not isinstance(obj, bool):
        raise InvalidArgument(f"{field}: must be a boolean")
    return obj


def opt_int(
    d: dict[str, object], key: str, field: str, lo: int = INT64_MIN, hi: int = INT64_MAX
) -> int | None:
    v = d.get(key)
    return None if v is None else check_int(v, f"{field}.{key}", lo, hi)


# ---------------------------------------------------------------- values


@value
class DeviceRule:
    """One `devices[]` entry: allow/deny `type major:minor access`."""

    allow: bool
    type: str = "a"  # "a" (all), "b" (block), "c" (char)
    major: int | None = None  # None = any ("*")
    minor: int | None = None
    access: str = "rwm"

    def v1_line(self) -> str:
        """The line the v1 devices cgroup takes in devices.allow/deny."""
        if self.type == "a":
            return "a *:* rwm" if self.access == "rwm" else f"a *:* {self.access}"
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


@value
class Memory:
    limit: int | None = None  # bytes, -1 unlimited
    reservation: int | None = None  # soft limit (v1) / memory.low (v2)
    swap: int | None = None  # memory+swap total, as the spec defines it; -1 unlimited
    kernel: int | None = None  # no longer enforced by Linux: only -1 is honoured
    kernel_tcp: int | None = None  # "kernelTCP": v1 memory.kmem.tcp.limit_in_bytes
    swappiness: int | None = None  # 0..100, v1 only
    disable_oom_killer: bool | None = None  # "disableOOMKiller", v1 only
    use_hierarchy: bool | None = None  # "useHierarchy": always on in current kernels
    check_before_update: bool | None = None  # "checkBeforeUpdate"


@value
class Cpu:
    shares: int | None = None  # v1 cpu.shares; v2 converted to cpu.weight
    quota: int | None = None  # microseconds per period, -1 unlimited
    burst: int | None = None  # microseconds
    period: int | None = None  # microseconds
    realtime_runtime: int | None = None  # "realtimeRuntime"
    realtime_period: int | None = None  # "realtimePeriod"
    cpus: str | None = None  # cpuset list, "0-3,5"
    mems: str | None = None
    idle: int | None = None  # 0 or 1


@value
class Pids:
    limit: int  # > 0 a limit; < 0 unlimited ("max"); 0 leaves the cgroup's value


@value
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@value
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@value
class BlockIO:
    weight: int | None = None  # 10..1000
    leaf_weight: int | None = None  # "leafWeight"
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


@value
class HugepageLimit:
    page_size: str  # "pageSize": "2MB", "1GB", "64KB"
    limit: int  # bytes


@value
class Network:
    """net_cls and net_prio (cgroup v1 only)."""

    class_id: int | None = None  # "classID"
    priorities: tuple[tuple[str, int], ...] = ()  # (interface name, priority)


@value
class RdmaLimit:
    device: str
    hca_handles: int | None = None  # "hcaHandles"
    hca_objects: int | None = None  # "hcaObjects"


@value
class LinuxResources:
    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None  # "blockIO"
    hugepage_limits: tuple[HugepageLimit, ...] = ()  # "hugepageLimits"
    network: Network | None = None
    rdma: tuple[RdmaLimit, ...] = ()
    unified: tuple[tuple[str, str], ...] = ()  # v2 file name -> value, in order


# ---------------------------------------------------------------- parsing

_CPUSET_RE: Final = r"^\s*$|^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\s*$"
_PAGE_SIZE_RE: Final = r"^[1-9][0-9]*[KMGT]B$"
# A unified key is one interface file name such as "memory.high": never a path.
_UNIFIED_KEY_RE: Final = r"^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$"


def _matches(pattern: str, text: str) -> bool:
    """re.match(pattern, text): re (and enum behind it, ~2 ms) is imported only
    by a config that has one of these rarely set fields."""
    import re

    return re.match(pattern, text) is not None


def parse_resources(obj: object, field: str = "linux.resources") -> LinuxResources:
    """Check `linux.resources` and return it typed (`None` gives empty resources)."""
    if obj is None:
        return LinuxResources()
    d = check_object(obj, field)
    devices = tuple(
        _parse_device(x, f"{field}.devices[{i}]")
        for i, x in enumerate(check_list(d.get("devices", []) or [], f"{field}.devices"))
    )
    return LinuxResources(
        devices=devices,
        memory=_parse_memory(d["memory"], f"{field}.memory")
        if d.get("memory") is not None
        else None,
        cpu=_parse_cpu(d["cpu"], f"{field}.cpu") if d.get("cpu") is not None else None,
        pids=_parse_pids(d["pids"], f"{field}.pids") if d.get("pids") is not None else None,
        block_io=(
            _parse_block_io(d["blockIO"], f"{field}.blockIO")
            if d.get("blockIO") is not None
            else None
        ),
        hugepage_limits=tuple(
            _parse_hugepage(x, f"{field}.hugepageLimits[{i}]")
            for i, x in enumerate(
                check_list(d.get("hugepageLimits", []) or [], f"{field}.hugepageLimits")
            )
        ),
        network=_parse_network(d["network"], f"{field}.network")
        if d.get("network") is not None
        else None,
        rdma=_parse_rdma(d.get("rdma"), f"{field}.rdma"),
        unified=_parse_unified(d.get("unified"), f"{field}.unified"),
    )


# An interface name as the kernel allows it (IFNAMSIZ 16, no "/" or space);
# an RDMA device name such as mlx4_0. Both are written into cgroup files.
_IFNAME_RE: Final = r"^[^/\s:]{1,15}$"
_RDMA_RE: Final = r"^[A-Za-z0-9_.-]{1,64}$"


def _parse_network(obj: object, field: str) -> Network:
    d = check_object(obj, field)
    prios = []
    for i, p in enumerate(check_list(d.get("priorities") or [], f"{field}.priorities", limit=256)):
        f = f"{field}.priorities[{i}]"
        pd = check_object(p, f)
        name = check_str(pd.get("name", ""), f"{f}.name", max_len=15)
        if not _matches(_IFNAME_RE, name):
            raise InvalidArgument(f"{f}.name: not an interface name ({name!r})")
        prios.append((name, check_int(pd.get("priority", 0), f"{f}.priority", 0, UINT32_MAX)))
    return Network(class_id=opt_int(d, "classID", field, 0, UINT32_MAX), priorities=tuple(prios))


def _parse_rdma(obj: object, field: str) -> tuple[RdmaLimit, ...]:
    if obj is None:
        return ()
    out = []
    for name, v in sorted(check_object(obj, field).items()):
        f = f"{field}.{name}"
        if not _matches(_RDMA_RE, name):
            raise InvalidArgument(f"{f}: not an RDMA device name")
        vd = check_object(v, f)
        out.append(
            RdmaLimit(
                name,
                opt_int(vd, "hcaHandles", f, 0, UINT32_MAX),
                opt_int(vd, "hcaObjects", f, 0, UINT32_MAX),
            )
        )
    return tuple(out)


def _parse_device(obj: object, field: str) -> DeviceRule:
    d = check_object(obj, field)
    if "allow" not in d:
        raise InvalidArgument(f"{field}.allow: required")
    allow = check_bool(d["allow"], f"{field}.allow")
    kind = "a" if d.get("type") is None else check_str(d["type"], f"{field}.type")
    if kind not in ("a", "b", "c"):
        raise InvalidArgument(f"{field}.type: must be one of a, b, c (got {kind!r})")
    access = "rwm" if d.get("access") is None else check_str(d["access"], f"{field}.access")
    if not access or any(c not in "rwm" for c in access) or len(set(access)) != len(access):
        raise InvalidArgument(f"{field}.access: must be letters from rwm (got {access!r})")
    major = opt_int(d, "major", field, -1, UINT32_MAX)
    minor = opt_int(d, "minor", field, -1, UINT32_MAX)
    # -1 is how some tools spell the wildcard.
    return DeviceRule(
        allow=allow,
        type=kind,
        major=None if major == -1 else major,
        minor=None if minor == -1 else minor,
        access=access,
    )


def _parse_memory(obj: object, field: str) -> Memory:
    d = check_object(obj, field)
    # runc treats a 0 limit as "not set"; so do we, rather than an instant OOM.
    limit = opt_int(d, "limit", field, -1) or None
    swap = opt_int(d, "swap", field, -1)
    if limit is not None and swap is not None and limit > 0 and swap > 0 and swap < limit:
        raise InvalidArgument(
            f"{field}.swap: must be at least memory.limit ({swap} < {limit}); "
            "it is the memory+swap total"
        )
    return Memory(
        limit=limit,
        reservation=opt_int(d, "reservation", field, -1),
        swap=swap,
        kernel=opt_int(d, "kernel", field, -1),
        kernel_tcp=opt_int(d, "kernelTCP", field, -1),
        swappiness=opt_int(d, "swappiness", field, 0, 100),
        disable_oom_killer=(
            None
            if d.get("disableOOMKiller") is None
            else check_bool(d["disableOOMKiller"], f"{field}.disableOOMKiller")
        ),
        use_hierarchy=(
            None
            if d.get("useHierarchy") is None
            else check_bool(d["useHierarchy"], f"{field}.useHierarchy")
        ),
        check_before_update=(
            None
            if d.get("checkBeforeUpdate") is None
            else check_bool(d["checkBeforeUpdate"], f"{field}.checkBeforeUpdate")
        ),
    )


def _parse_cpu(obj: object, field: str) -> Cpu:
    d = check_object(obj, field)
    shares = opt_int(d, "shares", field, 0, UINT64_MAX)
    if shares is not None and shares != 0 and not 2 <= shares <= 262144:
        raise InvalidArgument(f"{field}.shares: must be between 2 and 262144 (got {shares})")
    period = opt_int(d, "period", field, 0, UINT64_MAX)
    if period is not None and period != 0 and not 1000 <= period <= 1_000_000:
        # The kernel's own bounds for cfs_period_us and cpu.max.
        raise InvalidArgument(f"{field}.period: must be between 1000 and 1000000 (got {period})")
    quota = opt_int(d, "quota", field)
    if quota is not None and 0 <= quota < 1000 and quota != 0:
        raise InvalidArgument(f"{field}.quota: must be -1 or at least 1000 (got {quota})")
    cpus = None if d.get("cpus") is None else check_str(d["cpus"], f"{field}.cpus", max_len=1024)
    mems = None if d.get("mems") is None else check_str(d["mems"], f"{field}.mems", max_len=1024)
    for name, val in (("cpus", cpus), ("mems", mems)):
        if val is not None and not _matches(_CPUSET_RE, val):
            raise InvalidArgument(f"{field}.{name}: not a cpu list such as 0-3,5 (got {val!r})")
    return Cpu(
        shares=shares or None,
        quota=quota or None,  # 0 is runc's "not set"
        burst=opt_int(d, "burst", field, 0, UINT64_MAX),
        period=period or None,
        realtime_runtime=opt_int(d, "realtimeRuntime", field),
        realtime_period=opt_int(d, "realtimePeriod", field, 0, UINT64_MAX),
        cpus=cpus.strip() if cpus is not None else None,
        mems=mems.strip() if mems is not None else None,
        idle=opt_int(d, "idle", field, 0, 1),
    )


def _parse_pids(obj: object, field: str) -> Pids | None:
    d = check_object(obj, field)
    limit = opt_int(d, "limit", field)
    return None if limit is None else Pids(limit=limit)


def _parse_weight_device(obj: object, field: str) -> WeightDevice:
    d = check_object(obj, field)
    for k in ("major", "minor"):
        if k not in d:
            raise InvalidArgument(f"{field}.{k}: required")
    return WeightDevice(
        major=check_int(d["major"], f"{field}.major", 0, UINT32_MAX),
        minor=check_int(d["minor"], f"{field}.minor", 0, UINT32_MAX),
        weight=opt_int(d, "weight", field, 0, 1000),
        leaf_weight=opt_int(d, "leafWeight", field, 0, 1000),
    )


def _parse_throttle(obj: object, field: str) -> ThrottleDevice:
    d = check_object(obj, field)
    for k in ("major", "minor", "rate"):
        if k not in d:
            raise InvalidArgument(f"{field}.{k}: required")
    return ThrottleDevice(
        major=check_int(d["major"], f"{field}.major", 0, UINT32_MAX),
        minor=check_int(d["minor"], f"{field}.minor", 0, UINT32_MAX),
        rate=check_int(d["rate"], f"{field}.rate", 0, UINT64_MAX),
    )


_THROTTLE_KEYS: Final = (
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
)


def _parse_block_io(obj: object, field: str) -> BlockIO:
    d = check_object(obj, field)
    weight = opt_int(d, "weight", field, 0, 1000)
    if weight is not None and weight != 0 and weight < 10:
        raise InvalidArgument(f"{field}.weight: must be between 10 and 1000 (got {weight})")
    throttles = [
        tuple(
            _parse_throttle(x, f"{field}.{key}[{i}]")
            for i, x in enumerate(check_list(d.get(key, []) or [], f"{field}.{key}"))
        )
        for key in _THROTTLE_KEYS
    ]
    return BlockIO(
        weight=weight or None,
        leaf_weight=opt_int(d, "leafWeight", field, 0, 1000) or None,
        weight_device=tuple(
            _parse_weight_device(x, f"{field}.weightDevice[{i}]")
            for i, x in enumerate(
                check_list(d.get("weightDevice", []) or [], f"{field}.weightDevice")
            )
        ),
        throttle_read_bps_device=throttles[0],
        throttle_write_bps_device=throttles[1],
        throttle_read_iops_device=throttles[2],
        throttle_write_iops_device=throttles[3],
    )


def _parse_hugepage(obj: object, field: str) -> HugepageLimit:
    d = check_object(obj, field)
    if "pageSize" not in d or "limit" not in d:
        raise InvalidArgument(f"{field}: pageSize and limit are required")
    size = check_str(d["pageSize"], f"{field}.pageSize", max_len=16)
    if not _matches(_PAGE_SIZE_RE, size):
        raise InvalidArgument(f"{field}.pageSize: not a page size such as 2MB (got {size!r})")
    return HugepageLimit(
        page_size=size, limit=check_int(d["limit"], f"{field}.limit", 0, UINT64_MAX)
    )


def _parse_unified(obj: object, field: str) -> tuple[tuple[str, str], ...]:
    if obj is None:
        return ()
    d = check_object(obj, field)
    if len(d) > 256:
        raise InvalidArgument(f"{field}: more than 256 entries")
    out = []
    for key, text in d.items():
        # A key is written as a file in the container's cgroup: a "/" or ".."
        # would let config.json write anywhere in the cgroup tree.
        if not _matches(_UNIFIED_KEY_RE, key) or ".." in key:
            raise InvalidArgument(f"{field}.{key}: not a cgroup interface file name")
        if key.startswith("cgroup.") and key not in ("cgroup.max.depth", "cgroup.max.descendants"):
            # cgroup.procs, cgroup.subtree_control, cgroup.kill ... belong to the runtime.
            raise InvalidArgument(f"{field}.{key}: reserved for the runtime")
        out.append((key, check_str(text, f"{field}.{key}", max_len=4096)))
    return tuple(out)


__all__ = [
    "BlockIO",
    "Cpu",
    "DeviceRule",
    "HugepageLimit",
    "LinuxResources",
    "Memory",
    "Network",
    "Pids",
    "RdmaLimit",
    "ThrottleDevice",
    "WeightDevice",
    "parse_resources",
]
