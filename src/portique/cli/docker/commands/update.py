"""`portique update [OPTIONS] CONTAINER [CONTAINER...]`: resources and restart
policy of containers, live (engine/update.py); prints each name as given."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--blkio-weight", type=int, default=None, help="block IO weight (10 to 1000, 0 to disable)")
    add("--cpu-period", type=int, default=None, help="limit CPU CFS period")
    add("--cpu-quota", type=int, default=None, help="limit CPU CFS quota")
    add("--cpu-rt-period", type=int, default=None, help="limit the CPU real-time period (µs)")
    add("--cpu-rt-runtime", type=int, default=None, help="limit the CPU real-time runtime (µs)")
    add("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
    add("--cpus", default=None, help="number of CPUs")
    add("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1)")
    add("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1)")
    add("--kernel-memory", default=None, help=argparse.SUPPRESS)
    add("-m", "--memory", default=None, help="memory limit")
    add("--memory-reservation", default=None, help="memory soft limit")
    add("--memory-swap", default=None, help="swap limit plus memory; -1: unlimited swap")
    add("--pids-limit", type=int, default=None, help="tune container pids limit (-1: unlimited)")
    add("--restart", default=None, help="restart policy to apply when a container exits")
    add("containers", nargs="+", metavar="CONTAINER")


def update_config(args: argparse.Namespace) -> dict[str, Any]:
    """The API's UpdateConfig from the flags given (what is left out stays)."""
    from portique.engine import options as opt

    out: dict[str, Any] = {}
    if args.memory is not None:
        out["Memory"] = opt.parse_size(args.memory, "-m, --memory")
    if args.memory_swap is not None:
        swap = args.memory_swap.strip()
        out["MemorySwap"] = -1 if swap == "-1" else opt.parse_size(swap, "--memory-swap")
    if args.memory_reservation is not None:
        out["MemoryReservation"] = opt.parse_size(args.memory_reservation, "--memory-reservation")
    if args.kernel_memory is not None:
        out["KernelMemory"] = opt.parse_size(args.kernel_memory, "--kernel-memory")
    if args.cpus is not None:
        out["NanoCpus"] = opt.parse_cpus(args.cpus)
    if args.cpuset_cpus is not None:
        out["CpusetCpus"] = opt.parse_cpuset(args.cpuset_cpus)
    if args.cpuset_mems is not None:
        out["CpusetMems"] = args.cpuset_mems
    for flag, key in (
        ("cpu_shares", "CpuShares"),
        ("cpu_period", "CpuPeriod"),
        ("cpu_quota", "CpuQuota"),
        ("cpu_rt_period", "CpuRealtimePeriod"),
        ("cpu_rt_runtime", "CpuRealtimeRuntime"),
        ("blkio_weight", "BlkioWeight"),
        ("pids_limit", "PidsLimit"),
    ):
        if getattr(args, flag) is not None:
            out[key] = getattr(args, flag)
    if args.restart is not None:
        out["RestartPolicy"] = opt.parse_restart(args.restart).as_docker()
    return out


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.cli.docker.each import for_each
    from portique.engine import update

    config = update_config(args)
    if not config:
        sys.stderr.write("portique: you must provide one or more flags when using this command\n")
        return 1
    return for_each(args.containers, lambda ref: update.update(eng, ref, config))
