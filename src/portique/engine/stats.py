"""`stats` and `top` data from the cgroup and /proc, in Docker's columns."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portique.engine import db
from portique.engine.state import has_process

if TYPE_CHECKING:
    from portique.engine.engine import Engine


@dataclass(frozen=True, slots=True)
class Sample:
    cpu_ns: int
    wall: float
    mem_usage: int
    mem_limit: int
    pids: int
    blk_read: int
    blk_write: int
    net_rx: int
    net_tx: int


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _net(pid: int) -> tuple[int, int]:
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    continue
                fields = rest.split()
                rx += int(fields[0])
                tx += int(fields[8])
    except (OSError, ValueError, IndexError):
        pass
    return rx, tx


def sample(eng: Engine, row: db.ContainerRow) -> Sample:
    from portique.engine.foreign_runtime import refuse_foreign

    refuse_foreign(eng.paths(row.id), "stats")
    raw: dict[str, Any] = dict(eng.runtime().stats(row.id))
    cpu = raw.get("cpu") or {}
    usage = (cpu.get("usage") or {}).get("total", 0)
    mem = raw.get("memory") or {}
    mem_use = int((mem.get("usage") or {}).get("usage", 0))
    raw_mem = mem.get("raw") or {}
    # Docker subtracts the reclaimable page cache from the usage.
    inactive = int(raw_mem.get("total_inactive_file", raw_mem.get("inactive_file", 0)))
    if inactive < mem_use:
        mem_use -= inactive
    limit = int((mem.get("usage") or {}).get("limit", 0))
    host = host_memory()
    if not limit or (host and limit > host):
        limit = host
    pids = int((raw.get("pids") or {}).get("current", 0))
    rd = wr = 0
    for e in (raw.get("blkio") or {}).get("ioServiceBytesRecursive") or []:
        op = str(e.get("op", "")).lower()
        if op == "read":
            rd += int(e.get("value", 0))
        elif op == "write":
            wr += int(e.get("value", 0))
    rx, tx = _net(row.pid) if row.pid else (0, 0)
    return Sample(int(usage), time.monotonic(), mem_use, limit, pids, rd, wr, rx, tx)


def _system_cpu_ns() -> int:
    """The host's total CPU time (Docker's system_cpu_usage), in nanoseconds."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:8]
        ticks = sum(int(x) for x in fields)
    except (OSError, ValueError):
        return 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def api_stats(eng: Engine, row: db.ContainerRow, previous: dict[str, Any] | None) -> dict[str, Any]:
    """`GET /containers/{id}/stats`: one of Docker's StatsJSON (with the
    previous one's cpu_stats as precpu_stats, as the docker CLI computes
    CPU % from the pair). A container without a process reports zeros."""
    from portique.engine.logfile import rfc3339_nano

    zero = Sample(0, time.monotonic(), 0, host_memory(), 0, 0, 0, 0, 0)
    s = zero
    if has_process(row.status):
        try:
            s = sample(eng, row)
        except Exception:
            s = zero
    online = os.cpu_count() or 1
    cpu = {
        "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": _system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    empty_cpu = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
    ops = [
        {"major": 0, "minor": 0, "op": "read", "value": s.blk_read},
        {"major": 0, "minor": 0, "op": "write", "value": s.blk_write},
    ]
    return {
        "id": row.id,
        "name": "/" + row.name,
        "read": rfc3339_nano(time.time_ns()),
        "preread": (previous or {}).get("read", "0001-01-01T00:00:00Z"),
        "pids_stats": {"current": s.pids},
        "blkio_stats": {"io_service_bytes_recursive": ops},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": (previous or {}).get("cpu_stats", empty_cpu),
        "memory_stats": {"usage": s.mem_usage, "limit": s.mem_limit, "stats": {}},
        "networks": {"eth0": {"rx_bytes": s.net_rx, "tx_bytes": s.net_tx}},
    }


def stats_row(
    row: db.ContainerRow, first: Sample, second: Sample, no_trunc: bool = False
) -> dict[str, str]:
    from portique.units import binary_size, human_size

    dt = max(second.wall - first.wall, 1e-6)
    cpu_pct = max(0, second.cpu_ns - first.cpu_ns) / 1e9 / dt * 100
    mem_pct = second.mem_usage / second.mem_limit * 100 if second.mem_limit else 0.0
    return {
        "Container": row.id if no_trunc else row.id[:12],
        "ID": row.id if no_trunc else row.id[:12],
        "Name": row.name,
        "CPUPerc": f"{cpu_pct:.2f}%",
        "MemUsage": f"{binary_size(second.mem_usage)} / {binary_size(second.mem_limit)}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": f"{human_size(second.net_rx)} / {human_size(second.net_tx)}",
        "BlockIO": f"{human_size(second.blk_read)} / {human_size(second.blk_write)}",
        "PIDs": str(second.pids),
    }


STATS_DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
STATS_HEADERS = {
    "ID": "CONTAINER ID",
    "Container": "CONTAINER",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def container_pids(eng: Engine, row: db.ContainerRow) -> list[int]:
    from portique.engine.foreign_runtime import refuse_foreign

    refuse_foreign(eng.paths(row.id), "top")
    return [int(p) for p in eng.runtime().ps(row.id)]


def top(eng: Engine, ref: str, ps_args: list[str]) -> tuple[list[str], list[list[str]]]:
    """`GET /containers/{id}/top`: (Titles, Processes). Runs the host's `ps` and
    keeps the container's processes, as Docker does."""
    import subprocess

    from portique.engine import containers
    from portique.errors import InvalidArgument, InvalidState

    row = containers.get(eng, ref)
    if not has_process(row.status):
        raise InvalidState(f"container {row.id[:12]} is not running")
    pids = set(container_pids(eng, row))
    args = ps_args or ["-ef"]
    try:
        out = subprocess.run(
            ["ps", *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise InvalidArgument(f"ps {' '.join(args)} failed: {exc}") from None
    lines = out.splitlines()
    if not lines:
        return [], []
    header = lines[0].split()
    if "PID" not in header:
        raise InvalidArgument("couldn't find PID field in ps output")
    col = header.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(header) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            rows.append(fields)
    from portique.engine import events

    events.container(eng, row, "top")
    return header, rows


def os_getpid() -> int:
    return os.getpid()
