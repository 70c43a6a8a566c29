"""`update`: a container's resources and restart policy, live.

    warnings = update(eng, "web", {"Memory": 256 << 20, "MemorySwap": 512 << 20})

`POST /containers/{id}/update` with its UpdateConfig body: the Resources
fields of a HostConfig plus RestartPolicy. As Docker reads it, a zero (or an
empty string) leaves a field as it is, so a client may send every field it
knows. The checks and their words are Docker's (daemon/update.go and
container.UpdateContainer): the request's values first, then the conflicts
with what the container has. The new values go into HostConfig (a restart
keeps them); a container with a process gets them in its cgroup now,
through the runtime's update (Runtime.update, as `runc update`). The
monitor reads the restart policy from the database when the container
exits, so a new policy holds for the run under way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from portique.errors import InvalidArgument, PortiqueError

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["UPDATABLE", "update"]

# The UpdateConfig fields, as Docker names them.
UPDATABLE: Final = (
    "BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus",
    "CpusetMems", "Memory", "MemorySwap", "MemoryReservation", "KernelMemory",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "PidsLimit", "RestartPolicy",
)  # fmt: skip
_MIN_MEMORY: Final = 6 * 1024 * 1024
CPU_PERIOD: Final = 100_000  # the cfs period --cpus uses, as Docker
_RESTART_NAMES: Final = ("", "no", "always", "unless-stopped", "on-failure")


def update(eng: Engine, container: str, changes: Mapping[str, Any]) -> list[str]:
    """Apply an UpdateConfig to the container; returns Docker's Warnings (none)."""
    from portique.engine import containers, db
    from portique.engine import state as st

    for key in changes:
        if key not in UPDATABLE and changes[key] not in (None, 0, "", [], {}):
            raise InvalidArgument(f"{key} cannot be updated on a container")
    wanted = {k: v for k, v in changes.items() if k in UPDATABLE}
    _verify(wanted)
    conn = eng.db
    with db.transaction(conn):
        row = db.resolve_container(conn, container)
        host = dict(row.config.get("HostConfig") or {})
        new_host = _merged(row.id, host, wanted)
        config = dict(row.config)
        config["HostConfig"] = new_host
        db.update_config(conn, row.id, config)
    row = containers.get(eng, row.id)
    resources = _resources(wanted, new_host)
    if resources and st.has_process(row.status):
        from portique.oci.resources import parse_resources

        try:
            from portique.engine.foreign_runtime import refuse_foreign

            refuse_foreign(eng.paths(row.id), "update")
            eng.runtime().update(row.id, parse_resources(resources))
        except PortiqueError as exc:
            # The cgroup kept its old values: so does the record.
            with db.transaction(conn):
                cur = db.get_container(conn, row.id)
                if cur is not None:
                    config = dict(cur.config)
                    config["HostConfig"] = host
                    db.update_config(conn, row.id, config)
            raise PortiqueError(f"Cannot update container {row.id}: {exc}") from None
    return []


def _set(value: Any) -> bool:
    return value not in (None, 0, "")


def _verify(u: Mapping[str, Any]) -> None:
    """Docker's verifyContainerResources, on the request's own values."""
    memory = int(u.get("Memory") or 0)
    swap = int(u.get("MemorySwap") or 0)
    reservation = int(u.get("MemoryReservation") or 0)
    if memory and memory < _MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and 0 < swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    if _set(u.get("KernelMemory")):
        raise InvalidArgument(
            "kernel memory limits are not supported (deprecated by the kernel and by Docker):"
            " leave --kernel-memory out"
        )
    weight = int(u.get("BlkioWeight") or 0)
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    nano, period, quota = (int(u.get(k) or 0) for k in ("NanoCpus", "CpuPeriod", "CpuQuota"))
    if nano and period:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and quota:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    cpus = os.cpu_count() or 1
    if nano and not 10_000_000 <= nano <= cpus * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    policy = u.get("RestartPolicy") or {}
    if policy:
        name = str(policy.get("Name") or "")
        retries = int(policy.get("MaximumRetryCount") or 0)
        if name not in _RESTART_NAMES:
            raise InvalidArgument(f"invalid restart policy '{name}'")
        if retries and name != "on-failure":
            raise InvalidArgument(
                f"maximum retry count cannot be used with restart policy '{name}'"
            )
        if retries < 0:
            raise InvalidArgument("maximum retry count cannot be negative")


def _merged(cid: str, host: dict[str, Any], u: Mapping[str, Any]) -> dict[str, Any]:
    """The HostConfig after the update (container.UpdateContainer's rules)."""
    out = dict(host)

    def conflict(text: str) -> PortiqueError:
        return InvalidArgument(f"Cannot update container {cid}: {text}")

    nano, period, quota = (int(u.get(k) or 0) for k in ("NanoCpus", "CpuPeriod", "CpuQuota"))
    if nano > 0 and int(host.get("CpuPeriod") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")  # fmt: skip
    if nano > 0 and int(host.get("CpuQuota") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")  # fmt: skip
    if period > 0 and int(host.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")  # fmt: skip
    if quota > 0 and int(host.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")  # fmt: skip
    memory = int(u.get("Memory") or 0)
    old_swap = int(host.get("MemorySwap") or 0)
    if memory and old_swap > 0 and memory > old_swap and not _set(u.get("MemorySwap")):
        raise conflict(
            "Memory limit should be smaller than already set memoryswap limit,"
            " update the memoryswap at the same time"
        )
    for key in UPDATABLE:
        if key in ("RestartPolicy", "PidsLimit"):
            continue
        if _set(u.get(key)):
            out[key] = u[key]
    if u.get("PidsLimit") is not None:
        out["PidsLimit"] = int(u["PidsLimit"])
    policy = u.get("RestartPolicy") or {}
    if policy.get("Name"):
        if host.get("AutoRemove") and policy["Name"] != "no":
            raise conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        out["RestartPolicy"] = {
            "Name": str(policy["Name"]),
            "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
        }
    return out


def _resources(u: Mapping[str, Any], host: Mapping[str, Any]) -> dict[str, Any]:
    """The OCI linux.resources of the updated fields, from the new HostConfig."""
    res: dict[str, Any] = {}
    if any(_set(u.get(k)) for k in ("Memory", "MemorySwap", "MemoryReservation")):
        memory = int(host.get("Memory") or 0)
        swap = int(host.get("MemorySwap") or 0)
        mem: dict[str, Any] = {}
        if memory:
            mem["limit"] = memory
            # As at create: unset swap is twice the memory, -1 unlimited.
            mem["swap"] = -1 if swap == -1 else (swap or 2 * memory)
        elif swap:
            mem["swap"] = swap
        if int(host.get("MemoryReservation") or 0):
            mem["reservation"] = int(host["MemoryReservation"])
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if _set(u.get("NanoCpus")):
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = int(host["NanoCpus"]) * CPU_PERIOD // 1_000_000_000
    for key, field in (
        ("CpuShares", "shares"),
        ("CpuPeriod", "period"),
        ("CpuQuota", "quota"),
        ("CpuRealtimePeriod", "realtimePeriod"),
        ("CpuRealtimeRuntime", "realtimeRuntime"),
    ):
        if _set(u.get(key)):
            cpu[field] = int(host[key])
    for key, field in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        if _set(u.get(key)):
            cpu[field] = str(host[key])
    if cpu:
        res["cpu"] = cpu
    if u.get("PidsLimit") is not None:
        limit = int(host.get("PidsLimit") or 0)
        res["pids"] = {"limit": limit if limit > 0 else -1}
    if _set(u.get("BlkioWeight")):
        res["blockIO"] = {"weight": int(host["BlkioWeight"])}
    return res
