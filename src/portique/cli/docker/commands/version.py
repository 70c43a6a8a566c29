"""`portique version`."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from portique import API_VERSION, __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", help="output as JSON ('json') ")


def run(args: argparse.Namespace) -> int:
    info = {
        "Client": {
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
        }
    }
    if args.format == "json":
        json.dump(info, sys.stdout)
        sys.stdout.write("\n")
        return 0
    c = info["Client"]
    print("Client: portique")
    print(f" Version:    {c['Version']}")
    print(f" API version: {c['ApiVersion']}")
    print(f" Python:     {platform.python_version()}")
    print(f" OS/Arch:    {c['Os']}/{c['Arch']}")
    return 0
