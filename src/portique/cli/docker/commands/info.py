"""`portique info` (also `system info`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format output using a Go template")


def collect(eng: Engine) -> dict[str, Any]:
    from portique import __version__
    from portique.engine import containers, stats
    from portique.engine.state import Status, has_process

    rows = containers.list_all(eng)
    images = 0
    try:
        images = int(eng.images.disk_usage()["images"])
    except Exception:
        images = 0
    try:
        from portique.runtime.cgroups.base import detect

        cgroup = "2" if detect() == "v2" else "1"
    except Exception:
        cgroup = "1"
    uname = os.uname()
    return {
        "ID": "",
        "Containers": len(rows),
        "ContainersRunning": sum(r.status == Status.RUNNING for r in rows),
        "ContainersPaused": sum(r.status == Status.PAUSED for r in rows),
        "ContainersStopped": sum(not has_process(r.status) for r in rows),
        "Images": images,
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup,
        "KernelVersion": uname.release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": stats.host_memory(),
        "DockerRootDir": str(eng.root),
        "Name": uname.nodename,
        "ServerVersion": __version__,
        "DefaultRuntime": "portique",
        "Runtimes": {"portique": {"path": "portique-runtime"}},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def run(eng: Engine, args: argparse.Namespace) -> int:
    info = collect(eng)
    if args.format:
        if args.format == "json":
            sys.stdout.write(json.dumps(info) + "\n")
            return 0
        from portique.cli.docker import templates

        tmpl = templates.parse(
            args.format, name="info", syntax_exit=64, prefix="template parsing error: "
        )
        sys.stdout.write(
            templates.execute(tmpl, templates.typed(info, "system.dockerInfo"), prefix="") + "\n"
        )
        return 0
    from portique.units import human_size

    lines = [
        "Client: portique",
        "",
        "Server:",
        f" Containers: {info['Containers']}",
        f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}",
        f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}",
        f" Server Version: {info['ServerVersion']}",
        f" Storage Driver: {info['Driver']}",
        f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}",
        f" Cgroup Version: {info['CgroupVersion']}",
        " Runtimes: portique",
        f" Default Runtime: {info['DefaultRuntime']}",
        " Security Options:",
        "  seccomp",
        "   Profile: builtin",
        f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}",
        f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}",
        f" CPUs: {info['NCPU']}",
        f" Total Memory: {human_size(info['MemTotal'])}",
        f" Name: {info['Name']}",
        f" Docker Root Dir: {info['DockerRootDir']}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
