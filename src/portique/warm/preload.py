"""What a warm process imports before it serves, whichever face it is.

A fork of a process that has already imported a module starts with it: a
worker or a monitor that must import one itself pays the import (1-20 ms
each: the container start path pulls dataclasses, inspect, subprocess, the
runtime and the network) on the request's critical path, and the pages the
import writes are its own rather than shared. So the CLI's fork-server
(warm/server.py) and `portique serve` (api/server.py) import START_PATH, the
modules that creating, starting, exec'ing, stopping and removing a container
and monitoring it use, plus their face's own, then freeze the heap
(`gc.freeze()`: the collector never writes to the pages their forks share).
tests/integration/warm/test_warm_imports.py runs those commands through a
server started with PYTHONVERBOSE=1 and fails on any module imported late.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Sequence

START_PATH = (
    # the fork-server's own forks
    "portique.warm.worker",
    "portique.warm.zygote",
    # the engine: create, start (the monitor and its throwaway child C),
    # attach, exec, stop, kill, rm, the `--rm` removal and the recovery
    "portique.engine.engine",
    "portique.engine.containers",
    "portique.engine.lifecycle",
    "portique.engine.forkedmonitor",
    "portique.engine.prefork",
    "portique.engine.monitor",
    "portique.engine.health",
    "portique.engine.dblite",
    "portique.engine.recovery",
    "portique.engine.names",
    "portique.engine.run_opts",
    "portique.engine.foreign_runtime",
    "portique.engine.attach",
    "portique.engine.relay",
    "portique.engine.stdio",
    "portique.engine.exec",
    "portique.engine.config",
    "portique.engine.bundle",
    "portique.engine.netns",
    "portique.engine.options",
    "portique.engine.userdb",
    "portique.engine.volumes",
    "portique.network.types",
    "portique.engine.earlynet",
    "portique.engine.network",
    "portique.engine.present",
    "portique.duration",
    # the image store: resolving the image, the container's overlay
    "portique.image.images",
    "portique.image.fuseoverlay",
    # the runtime, in-process: create, start, exec, kill, delete, cgroups
    "portique.oci.runtime",
    "portique.oci.runtime_linux",
    "portique.runtime",
    "portique.runtime.container",
    "portique.runtime.create",
    "portique.runtime.start",
    "portique.runtime.init",
    "portique.runtime.process",
    "portique.runtime.rootfs",
    "portique.runtime.mountplan",
    "portique.runtime.hooks",
    "portique.runtime.devices",
    "portique.runtime.execution",
    "portique.runtime.kill",
    "portique.runtime.delete",
    "portique.runtime.seccomp",
    "portique.runtime.seccomp_cache",
    "portique.runtime.cgroups",
    "portique.runtime.cgroups.v1",
    "portique.runtime.cgroups.v2",
    "portique.linux.kernel",
    "portique.linux.keyring",
    "portique.linux.prctl",
    "portique.linux.seccomp",
    # a container on a bridge network: endpoints, addresses, firewall, DNS
    "portique.network.networks",
    "portique.network.attachment",
    "portique.network.firewall",
    "portique.network.firewall_sync",
    "portique.network.ports",
    "portique.network.bridge",
    "portique.network.dns",
    "portique.network.dnsserver",
    # what those import on first use, from the standard library
    "_sha256",
    "encodings.ascii",
    "importlib.machinery",
    "subprocess",
)


def preload(modules: Sequence[str] = ()) -> None:
    """Import START_PATH and `modules`, then freeze the heap the forks will share."""
    for name in (*START_PATH, *modules):
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
