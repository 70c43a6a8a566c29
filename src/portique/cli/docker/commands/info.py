"""`portique info` (also `system info`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format output using a Go template")


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import system

    info = system.info(eng)
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
        *(["  rootless"] if "name=rootless" in info["SecurityOptions"] else []),
        *[f"   {key}: {value}" for key, value in (info.get("Rootless") or {}).items()],
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
