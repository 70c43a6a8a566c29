"""The engine's side of networking: none, host, or a network layer attachment.

`--network none`: a new network namespace with only loopback, brought up here.
`--network host`: no network namespace. Anything else (`bridge`, the default,
or a user-defined network) goes to portique.network's facade, which wires a
veth into the container's namespace before the process starts and returns
the resolv.conf and hosts lines to write.
"""

from __future__ import annotations

import contextlib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from portique.engine.paths import ContainerPaths

LOCAL_MODES = ("none", "host")


def mode_of(host: dict[str, Any]) -> str:
    return str(host.get("NetworkMode") or "bridge")


def uses_network_layer(host: dict[str, Any]) -> bool:
    return mode_of(host) not in LOCAL_MODES


def port_bindings(
    specs: list[str],
) -> tuple[dict[str, list[dict[str, str]]], dict[str, dict[str, Any]]]:
    """-p specs -> Docker's HostConfig.PortBindings and Config.ExposedPorts."""
    from portique.network.ports import parse_port_spec

    bindings: dict[str, list[dict[str, str]]] = {}
    exposed: dict[str, dict[str, Any]] = {}
    for spec in specs:
        for m in parse_port_spec(spec):
            key = f"{m.container_port}/{m.proto}"
            exposed[key] = {}
            host_ip = "" if m.host_ip == "0.0.0.0" else m.host_ip
            bindings.setdefault(key, []).append(
                {"HostIp": host_ip, "HostPort": str(m.host_port) if m.host_port else ""}
            )
    return bindings, exposed


def _mappings(bindings: dict[str, Any]) -> list[Any]:
    from portique.network.types import PortMapping, Proto

    out = []
    for key, entries in (bindings or {}).items():
        port_s, _, proto = key.partition("/")
        out += [
            PortMapping(
                container_port=int(port_s),
                host_port=int(e.get("HostPort") or 0),
                host_ip=e.get("HostIp") or "0.0.0.0",
                proto=Proto(proto or "tcp"),
            )
            for e in entries or [{}]
        ]
    return out


def open_networks() -> Any:
    from portique.network.networks import Networks

    return Networks(ContainerPaths.of("x").root)


# How often a listing command may pay for repair(): the first call in a process costs
# ~170 ms here (pyroute2's import, a netlink dump, two `nft` runs), later ones ~15 ms.
REPAIR_INTERVAL = 60.0


def repair_leftovers(*, every: float = REPAIR_INTERVAL) -> None:
    """Reclaim what crashes and deleted engine roots left in the kernel (endpoints whose
    namespace is gone, stray veths, orphaned bridges and nftables tables, idle
    resolvers), at most once per `every` seconds per run root (a stamp's mtime), so
    listing commands stay fast. Never on the `run` path. Failures are not the
    caller's: the next call tries again."""
    import time

    from portique.engine import paths

    stamp = paths.run_root() / "network" / "repair.stamp"
    with contextlib.suppress(OSError):
        if every > 0 and time.time() - stamp.stat().st_mtime < every:
            return
    nets = open_networks()
    # Best effort: a leftover never fails `ps`.
    with contextlib.suppress(Exception):
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
            # live_containers=None: only facts (netns gone, stuck "creating" rows,
            # deleted roots) count, so a container starting concurrently keeps its
            # endpoint.
            nets.repair(live_containers=None)
        finally:
            nets.close()


def check_network(name: str) -> None:
    """At create: a user-defined network must exist (bridge is made on first use)."""
    if name in (*LOCAL_MODES, "bridge", "default"):
        return
    nets = open_networks()
    try:
        nets.inspect(name)
    finally:
        nets.close()


def _write_in_place(path: Path, text: str) -> None:
    # These files are bind-mounted by inode: replace the content, not the file.
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def setup(row: Any, pid: int, paths: ContainerPaths, stack: ExitStack) -> dict[str, Any]:
    """Wire the container's network before its process starts; NetworkSettings for inspect."""
    host = row.config["HostConfig"]
    mode = mode_of(host)
    netns = f"/proc/{pid}/ns/net"
    if mode == "host":
        return {}
    if mode == "none":
        from portique.engine.netns import loopback_up

        loopback_up(netns)
        return {}
    from portique.network.types import NetworkRequest

    nets = open_networks()
    stack.callback(nets.close)
    if mode in ("bridge", "default"):
        nets.ensure_default()
        mode = "bridge"
    cn = nets.setup_container(
        row.id,
        Path(netns),
        container_name=row.name,
        networks=[NetworkRequest(mode)],
        ports=_mappings(host.get("PortBindings") or {}),
    )
    stack.callback(_release, row.id)
    _write_in_place(paths.dir / "resolv.conf", cn.resolv_conf)
    hostname = (paths.dir / "hostname").read_text().strip()
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for ip, names in cn.hosts:
        lines.append(f"{ip}\t{' '.join(names)}")
    if cn.endpoints:
        lines.append(f"{cn.endpoints[0].ip}\t{hostname}")
    _write_in_place(paths.dir / "hosts", "\n".join(lines) + "\n")
    return settings_of(cn)


def settings_of(cn: Any) -> dict[str, Any]:
    networks = {}
    for ep in cn.endpoints:
        networks[ep.network] = {
            "NetworkID": ep.network_id,
            "EndpointID": "",
            "Gateway": ep.gateway or "",
            "IPAddress": ep.ip,
            "IPPrefixLen": ep.prefixlen,
            "MacAddress": ep.mac,
            "Aliases": list(ep.aliases) or None,
        }
    ports: dict[str, list[dict[str, str]] | None] = {}
    for m in cn.ports:
        ports.setdefault(f"{m.container_port}/{m.proto}", []).append(  # type: ignore[union-attr]
            {"HostIp": m.host_ip, "HostPort": str(m.host_port)}
        )
    first = cn.endpoints[0] if cn.endpoints else None
    return {
        "Networks": networks,
        "Ports": ports,
        "IPAddress": first.ip if first else "",
        "IPPrefixLen": first.prefixlen if first else 0,
        "Gateway": (first.gateway or "") if first else "",
        "MacAddress": first.mac if first else "",
        "PortsText": ", ".join(
            f"{m.host_ip}:{m.host_port}->{m.container_port}/{m.proto}" for m in cn.ports
        ),
    }


def _release(cid: str) -> None:
    with contextlib.suppress(Exception):
        nets = open_networks()
        try:
            nets.release_container(cid)
        finally:
            nets.close()


def release(cid: str, host: dict[str, Any]) -> None:
    """After exit or at removal: the container's endpoints, ports and leases (idempotent)."""
    if uses_network_layer(host):
        _release(cid)
