"""The engine's side of networking: none, host, or a network layer attachment.

`--network none`: a new network namespace with only loopback, brought up here.
`--network host`: no network namespace. Anything else (`bridge`, the default,
or a user-defined network) goes to portique.network's facade, which wires a
veth into the container's namespace before the process starts and returns
the resolv.conf and hosts lines to write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.engine.engine import Engine

LOCAL_MODES = ("none", "host")


def mode_of(host: dict[str, Any]) -> str:
    return str(host.get("NetworkMode") or "bridge")


def joined_container(host: dict[str, Any]) -> str:
    """The name or id after `container:` (`--network container:NAME`), else ""."""
    mode = mode_of(host)
    return mode.partition(":")[2] if mode.startswith("container:") else ""


def uses_network_layer(host: dict[str, Any]) -> bool:
    return mode_of(host) not in LOCAL_MODES and not joined_container(host)


def endpoints_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's NetworkingConfig.EndpointsConfig kept in the row: per network name,
    {"Aliases": [...], "IPAMConfig": {"IPv4Address": ip}} (`--network-alias`, `--ip`,
    extra `--network`s, `network connect` of a stopped container)."""
    eps = (config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    return dict(eps) if isinstance(eps, dict) else {}


def requests_of(config: Mapping[str, Any]) -> list[Any]:
    """The networks to join at start, NetworkMode's first (it gets eth0 and the route)."""
    mode = mode_of(config["HostConfig"])
    first = "bridge" if mode == "default" else mode
    eps = endpoints_config(config)
    # `none` gets networks only through `network connect`, recorded in eps.
    names = dict.fromkeys([*([] if first in LOCAL_MODES else [first]), *eps])
    if not names:
        return []  # `--network none` or host: the network layer's types (dataclasses) unloaded
    from portique.network.types import NetworkRequest

    out = []
    # --mac-address: the first network's interface (Docker's Config.MacAddress).
    mac = str(config.get("Config", {}).get("MacAddress") or "") or None
    for name in names:
        ep = eps.get(name) or {}
        ip = (ep.get("IPAMConfig") or {}).get("IPv4Address") or None
        aliases = tuple(str(a) for a in ep.get("Aliases") or ())
        ep_mac = str(ep.get("MacAddress") or "") or (mac if name == first else None)
        out.append(NetworkRequest(name, aliases, ip, ep_mac))
    return out


def endpoint_entry(aliases: list[str] | tuple[str, ...], ip: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Aliases": list(aliases) or None}
    if ip:
        entry["IPAMConfig"] = {"IPv4Address": ip}
    return entry


def parse_extra_host(spec: str) -> tuple[str, str]:
    """`--add-host NAME:IP` (or NAME=IP; IP may be `host-gateway`) -> (name, ip)."""
    import ipaddress

    from portique.errors import InvalidArgument

    sep = "=" if "=" in spec else ":"
    name, _, ip = spec.partition(sep)
    ip = ip.strip("[]")
    bad = InvalidArgument(f"invalid argument {spec!r} for --add-host: want NAME:IP")
    if not name or not ip or any(c.isspace() for c in name):
        raise bad
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise bad from None
    return name, ip


def check_dns_servers(servers: list[str]) -> None:
    import ipaddress

    from portique.errors import InvalidArgument, shown

    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise InvalidArgument(f"{shown(s)} is not an ip address (--dns)") from None


def extra_host_lines(host: dict[str, Any], gateway: str) -> list[str]:
    """HostConfig.ExtraHosts as /etc/hosts lines; `host-gateway` is the host's address
    on the container's first network (its gateway), or loopback without one."""
    lines = []
    for spec in host.get("ExtraHosts") or ():
        name, ip = parse_extra_host(str(spec))
        if ip == "host-gateway":
            ip = gateway or "127.0.0.1"
        lines.append(f"{ip}\t{name}")
    return lines


def with_dns_flags(resolv: str, host: dict[str, Any]) -> str:
    """`--dns`, `--dns-search`, `--dns-option` over a resolv.conf (none/host modes;
    the network layer applies them itself)."""
    dns = list(host.get("Dns") or ())
    search = list(host.get("DnsSearch") or ())
    options = list(host.get("DnsOptions") or ())
    if not (dns or search or options):
        return resolv
    keep = []
    for line in resolv.splitlines():
        word = line.split()[:1]
        if (
            (dns and word == ["nameserver"])
            or (search and word in (["search"], ["domain"]))
            or (options and word == ["options"])
        ):
            continue
        keep.append(line)
    keep += [f"nameserver {s}" for s in dns]
    if search:
        keep.append("search " + " ".join(search))
    if options:
        keep.append("options " + " ".join(options))
    return "\n".join(keep) + "\n"


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


# How often a listing command may pay for repair(): the first call in a process costs
# ~170 ms here (pyroute2's import, a netlink dump, two `nft` runs), later ones ~15 ms.
REPAIR_INTERVAL = 60.0


def repair_leftovers(eng: Engine, *, every: float = REPAIR_INTERVAL) -> None:
    """Reclaim what crashes and deleted engine roots left in the kernel (endpoints whose
    namespace is gone, stray veths, orphaned bridges and nftables tables, idle
    resolvers), at most once per `every` seconds per run root (a stamp's mtime), so
    listing commands stay fast. Never on the `run` path. Failures are not the
    caller's: the next call tries again."""
    import time

    if rootless():
        from portique.engine import rootlessnet

        if not rootlessnet.exists(eng.runroot):
            return  # no network of the engine's yet: nothing to repair
    stamp = eng.runroot / "network" / "repair.stamp"
    with contextlib.suppress(OSError):
        if every > 0 and time.time() - stamp.stat().st_mtime < every:
            return
    # Best effort: a leftover never fails `ps`.
    with contextlib.suppress(Exception):
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        # live_containers=None: only facts (netns gone, stuck "creating" rows,
        # deleted roots) count, so a container starting concurrently keeps its
        # endpoint.
        eng.networks.repair(live_containers=None)


def check_network(eng: Engine, name: str) -> None:
    """At create: a user-defined network must exist (bridge is made on first use);
    `container:REF` must name an existing container."""
    if name in (*LOCAL_MODES, "bridge", "default"):
        return
    if name.startswith("container:"):
        from portique.engine import db

        db.resolve_container(eng.db, name.partition(":")[2])
        return
    eng.networks.inspect(name)


def record_endpoint(eng: Engine, ref: str, network: str, aliases: list[str], ip: str | None) -> Any:
    """`network connect`: remember the request in the container's EndpointsConfig (so
    a stopped container joins at its next start, and a running one again after a
    restart); returns the container's row as it was before."""
    from portique.engine import db
    from portique.errors import Conflict, InvalidArgument
    from portique.network.networks import check_alias

    for alias in aliases:
        check_alias(alias)
    conn = eng.db
    with db.transaction(conn):
        row = db.resolve_container(conn, ref)
        host = row.config["HostConfig"]
        if mode_of(host) == "host" or joined_container(host):
            raise InvalidArgument(
                f"container {row.name} shares a network namespace ({mode_of(host)})"
                " and cannot be connected to a network"
            )
        eps = endpoints_config(row.config)
        current = "bridge" if mode_of(host) == "default" else mode_of(host)
        if network == current or network in eps:
            raise Conflict(f"container {row.name} is already attached to network {network}")
        eps[network] = endpoint_entry(aliases, ip)
        db.update_config(conn, row.id, {**row.config, "NetworkingConfig": {"EndpointsConfig": eps}})
    return row


def forget_endpoint(eng: Engine, cid: str, network: str) -> bool:
    """`network disconnect`: drop the network from the container's EndpointsConfig;
    False when it was not there."""
    from portique.engine import db

    conn = eng.db
    with db.transaction(conn):
        row = db.get_container(conn, cid)
        if row is None:
            return False
        eps = endpoints_config(row.config)
        if network not in eps:
            return False
        eps.pop(network)
        db.update_config(conn, cid, {**row.config, "NetworkingConfig": {"EndpointsConfig": eps}})
        return True


def joined_netns(eng: Engine, host: dict[str, Any]) -> tuple[str, Any]:
    """For `container:REF`: (/proc/PID/ns/net of that container's init, its row).
    It must be running: its namespace exists only while its process does."""
    from portique.engine import db
    from portique.engine.state import has_process
    from portique.errors import InvalidState

    other = db.resolve_container(eng.db, joined_container(host))
    if not has_process(other.status) or other.pid <= 0:
        raise InvalidState(f"cannot join the network of container {other.name}: it is not running")
    from portique.engine.lifecycle import check_init

    try:
        # The row's pid alone could be a host process's by now (its netns the host's).
        check_init(eng, other.id, other.pid)
    except InvalidState:
        raise InvalidState(
            f"cannot join the network of container {other.name}: it is not running"
        ) from None
    return f"/proc/{other.pid}/ns/net", other


def write_in_place(path: Path, text: str) -> None:
    # These files are bind-mounted by inode: replace the content, not the file.
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def setup(
    eng: Engine,
    row: Any,
    pid: int,
    stack: ExitStack,
    netns: str = "",
    before_files: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Wire the container's network before its process starts; NetworkSettings for
    inspect. `netns`: the namespace to wire when it is not yet the init's
    (earlynet.py), whose `before_files()` returns once the bundle's hostname,
    hosts and resolv.conf exist (the monitor writes them meanwhile)."""
    paths = eng.paths(row.id)
    host = row.config["HostConfig"]
    mode = mode_of(host)
    netns = netns or f"/proc/{pid}/ns/net"
    if mode == "host":
        return {}
    if joined_container(host):
        return {}  # the other container's namespace, wired when it started
    requests = requests_of(row.config)
    if _usermode(host):
        return _setup_usermode(eng, row, pid, stack)
    if mode == "none":
        from portique.engine.netns import loopback_up

        loopback_up(netns)
        if not requests:  # no `network connect` recorded: loopback only
            return {}
    nets = eng.networks
    if any(r.network in ("bridge", "default") for r in requests):
        nets.ensure_default()
    ports = _ports_to_publish(row.config)
    if rootless():
        # DNAT inside the engine's namespace, from its slirp4netns's address
        # (engine/rootlessnet.py): the host address is slirp4netns's to bind.
        from dataclasses import replace

        ports = [replace(m, host_ip="0.0.0.0") for m in ports]
    cn = nets.setup_container(
        row.id,
        Path(netns),
        container_name=row.name,
        networks=requests,
        ports=ports,
        dns=list(host.get("Dns") or ()),
        dns_search=list(host.get("DnsSearch") or ()),
        dns_options=list(host.get("DnsOptions") or ()),
    )
    stack.callback(_release, eng, row.id)
    if rootless() and cn.ports:
        from portique.engine import rootlessnet

        asked = {(m.container_port, str(m.proto)): m.host_ip for m in _ports_to_publish(row.config)}
        rootlessnet.forward(
            eng.runroot,
            [
                replace(m, host_ip=asked.get((m.container_port, str(m.proto)), m.host_ip))
                for m in cn.ports
            ],
        )
    if before_files is not None:
        before_files()
    write_in_place(paths.dir / "resolv.conf", cn.resolv_conf)
    hostname = (paths.dir / "hostname").read_text().strip()
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for ip, names in cn.hosts:
        lines.append(f"{ip}\t{' '.join(names)}")
    first = cn.endpoints[0] if cn.endpoints else None
    if first is not None:
        lines.append(f"{first.ip}\t{hostname}")
    lines += extra_host_lines(host, (first.gateway or "") if first else "")
    lines += link_lines(eng, host, {ep.network for ep in cn.endpoints})
    write_in_place(paths.dir / "hosts", "\n".join(lines) + "\n")
    return settings_of(cn)


def parse_link(link: str) -> tuple[str, str]:
    """--link NAME[:ALIAS] -> (name, alias)."""
    name, _, alias = link.partition(":")
    return name.strip("/"), alias.strip("/") or name.strip("/")


def link_lines(eng: Engine, host: Mapping[str, Any], networks: set[str]) -> list[str]:
    """--link NAME[:ALIAS]: an /etc/hosts line naming the linked container by its
    alias, name and short id at its address on a network both are on (Docker's
    legacy link on the default bridge; on a user-defined network, the alias
    Docker's DNS gives only to the linking container). It must be running."""
    from portique.engine import db
    from portique.engine.state import has_process
    from portique.errors import InvalidArgument, InvalidState

    out = []
    for link in host.get("Links") or ():
        name, alias = parse_link(str(link))
        other = db.resolve_container(eng.db, name)
        if not has_process(other.status):
            raise InvalidState(f"cannot link to a non running container: /{other.name}")
        eps = (other.config.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((str(ep.get("IPAddress")) for n, ep in eps.items()
                   if n in networks and ep.get("IPAddress")), "")  # fmt: skip
        if not ip:
            raise InvalidArgument(
                f"cannot link to /{other.name}: it is on none of this container's networks"
            )
        names = dict.fromkeys([alias, other.name, other.id[:12]])
        out.append(f"{ip}\t{' '.join(names)}")
    return out


def rootless() -> bool:
    """The engine runs inside a user namespace (engine/rootless.py)."""
    from portique.linux.ns import in_user_namespace

    return in_user_namespace()


def _usermode(host: dict[str, Any]) -> bool:
    """A rootless engine's default network: slirp4netns (engine/usernet.py)."""
    return mode_of(host) in ("bridge", "default") and rootless()


def check_rootless(config: Mapping[str, Any]) -> None:
    """What a rootless engine cannot give a container, refused at create: host
    ports below the unprivileged start, networks other than the default."""
    from portique.engine.rootless import check_ports
    from portique.errors import InvalidArgument

    host = config["HostConfig"]
    check_ports([m.host_port for m in _ports_to_publish(dict(config))])
    mode = mode_of(host)
    others = [n for n in endpoints_config(config) if n not in ("bridge", "default", mode)]
    if mode in ("bridge", "default") and others:
        raise InvalidArgument(
            f"network {others[0]}: a rootless engine's default network (slirp4netns)"
            " joins no other network: run on the user-defined network instead"
        )


def check_rootless_create(
    eng: Engine, host: Mapping[str, Any], networking: Mapping[str, Any], names: list[str]
) -> None:
    """A rootless engine's create: limits need a cgroup of the user's, ports
    and networks as check_rootless says, user-defined networks must exist."""
    from portique.engine.rootless import check_limits

    check_limits(host)
    check_rootless({"HostConfig": host, "NetworkingConfig": networking, "Config": {}})
    for name in dict.fromkeys(names):
        if name not in ("bridge", "default"):
            check_network(eng, name)


def _setup_usermode(eng: Engine, row: Any, pid: int, stack: ExitStack) -> dict[str, Any]:
    from portique.engine import usernet
    from portique.engine.netns import loopback_up

    paths = eng.paths(row.id)
    host = row.config["HostConfig"]
    loopback_up(f"/proc/{pid}/ns/net")
    stack.callback(usernet.stop, eng, row.id)
    ports = usernet.start(eng, row.id, pid, _ports_to_publish(row.config))
    write_in_place(paths.dir / "resolv.conf", with_dns_flags(f"nameserver {usernet.DNS}\n", host))
    hostname = (paths.dir / "hostname").read_text().strip()
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines.append(f"{usernet.GUEST_IP}\t{hostname}")
    lines += extra_host_lines(host, usernet.GATEWAY)
    write_in_place(paths.dir / "hosts", "\n".join(lines) + "\n")
    return usernet.settings(ports)


def _ports_to_publish(config: dict[str, Any]) -> list[Any]:
    """-p bindings, plus with -P every exposed port (image's or --expose/-p's) that
    -p did not bind, on a random host port."""
    from portique.network.ports import exposed_ports

    host = config["HostConfig"]
    bindings = host.get("PortBindings") or {}
    out = _mappings(bindings)
    if host.get("PublishAllPorts"):
        exposed = (config["Config"].get("ExposedPorts") or {}).keys()
        out += exposed_ports(
            [k for k in exposed if k not in bindings and f"{k}/tcp" not in bindings]
        )
    return out


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


def _release(eng: Engine, cid: str) -> None:
    if rootless():
        from portique.engine import rootlessnet, usernet

        usernet.stop(eng, cid)  # the default network's slirp4netns, if any
        if not rootlessnet.exists(eng.runroot):
            return
        with contextlib.suppress(Exception):
            rootlessnet.unforward(eng.runroot, list(eng.networks.ports(cid)))
    from portique.engine import events

    with contextlib.suppress(Exception):
        eps = eng.networks.endpoints(cid)
        eng.networks.release_container(cid)
        for ep in eps:
            events.network(eng, ep.network_id, ep.network, "disconnect", container=cid)


def needs_release(config: Mapping[str, Any]) -> bool:
    """Whether the container's exit must release endpoints: it joins networks at start."""
    return uses_network_layer(config["HostConfig"]) or bool(endpoints_config(config))


def release(eng: Engine, cid: str, host: dict[str, Any]) -> None:
    """After exit or at removal: the container's endpoints, ports and leases (idempotent).
    A `--network none` container may have been connected while it ran."""
    if uses_network_layer(host) or mode_of(host) == "none":
        _release(eng, cid)


def wants_early_setup(row: Any) -> bool:
    """Whether starting `row` wires endpoints through the network layer."""
    host = row.config["HostConfig"]
    if joined_container(host) or mode_of(host) == "host" or _usermode(host):
        return False
    return bool(requests_of(row.config))
