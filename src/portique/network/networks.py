"""Networks: the network layer's facade, what the engine and the CLI call.

    from portique.network.networks import Networks
    nets = Networks(root, run_root=run_root)  # the engine root and run root (Engine)
    nets.create(name, *, subnet=None, gateway=None, internal=False, driver="bridge",
                labels=None, options=None) -> NetworkRecord
    nets.ensure_default() -> NetworkRecord    # "bridge" on device portique0, 172.17.0.0/16 if free
    nets.list() -> list[NetworkRecord]; nets.inspect(name_or_id) -> NetworkRecord
    nets.remove(name_or_id)                   # Conflict while endpoints exist
    nets.prune() -> list[str]                 # names removed
    nets.connect(name_or_id, container_id, netns_path, *, container_name, aliases=(),
                 ip=None, mac=None) -> Endpoint
    nets.disconnect(name_or_id, container_id)
    nets.release_container(container_id)      # every endpoint, port, lease; idempotent
    nets.endpoints(container_id) -> list[Endpoint]; nets.network_endpoints(name_or_id)
    nets.publish(container_id, [PortMapping]) -> [PortMapping]   # host ports filled in
    nets.ports(container_id) -> [PortMapping]
    nets.resolv_conf(container_id, *, dns=(), dns_search=(), dns_options=()) -> str
    nets.hosts_entries(container_id) -> [(ip, names)]
    nets.setup_container(container_id, netns_path, *, container_name,
                         networks=(NetworkRequest("bridge"),), ports=(), dns=(),
                         dns_search=(), dns_options=()) -> ContainerNetwork
                                              # connect all + publish, all or nothing
    nets.repair(live_containers=None) -> RepairReport
    nets.destroy()                            # everything this root made (test teardown)
    nets.inspect_json(name_or_id) -> dict     # Docker's `network inspect` shape
    bring_up_loopback(netns_path)             # for `--network none`
    parse_port_spec(spec) -> [PortMapping]; exposed_ports(["80/tcp"]) -> [PortMapping] (-P)
    format_ports([PortMapping]) -> "0.0.0.0:8080->80/tcp, ..." (the PORTS column)

What the engine calls, per container:
    start:  cn = nets.setup_container(cid, Path(f"/proc/{pid}/ns/net"), container_name=name,
                networks=[NetworkRequest(net, aliases, ip, mac), ...], ports=mappings)
            before the process runs; write cn.resolv_conf to /etc/resolv.conf and
            cn.hosts (+ localhost lines and the hostname) to /etc/hosts.
            --network none: bring_up_loopback(path); host: nothing;
            container:<id>: join that container's netns, nothing here.
    exit/stop and rm: nets.release_container(cid)   (idempotent)
    commands that list or start containers: nets.repair(live_containers=ids of
            containers that are running), cheap when there is nothing to do.

This module holds the networks themselves (create, remove, the default one),
the files a container gets, and the facade; the rest is beside it:
network/attachment.py (endpoints, connect/disconnect, published ports, in the
order that lets repair() undo a crash), network/firewall_sync.py (the
nftables tables re-rendered from the database as a whole, network/firewall.py),
network/repair.py, network/present.py.

Host effects, as Docker has them: net.ipv4.ip_forward is set to 1 when a
container joins a non-internal network (never reset); each bridge gets
route_localnet=1 (published ports on 127.0.0.1).
"""

from __future__ import annotations

import builtins
import contextlib
import ipaddress
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portique import db as pdb
from portique.errors import Conflict, InvalidArgument, NotFound, shown
from portique.network import attachment, firewall_sync, ipam
from portique.network import db as ndb
from portique.network.attachment import check_alias
from portique.network.ports import exposed_ports, format_ports, parse_port_spec
from portique.network.types import (
    DEFAULT_NETWORK,
    MAX_NAME,
    ContainerNetwork,
    Endpoint,
    NetworkRecord,
    NetworkRequest,
    PortMapping,
)

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # fullmatch: `$` lets "a\n" in
DEFAULT_NAME = DEFAULT_NETWORK
DEFAULT_BRIDGE = "portique0"
DEFAULT_SUBNET = "172.17.0.0/16"
PREDEFINED = ("bridge", "host", "none")
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
CREATING_GRACE_SECONDS = 60.0  # a "creating" endpoint older than this is a crash leftover
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # Docker's, when the host has only loopback resolvers


@dataclass(slots=True)
class RepairReport:
    endpoints: list[str] = field(default_factory=list)  # "network/container12"
    links: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    ports: int = 0
    tables: list[str] = field(default_factory=list)  # "inet portique_1a2b3c4d"


def check_name(name: str) -> None:
    """A network name: Docker's characters, at most a DNS name's length."""
    if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        raise InvalidArgument(
            f"invalid network name '{shown(name)}': use [a-zA-Z0-9][a-zA-Z0-9_.-]*,"
            f" at most {MAX_NAME} characters"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def bring_up_loopback(netns_path: Path) -> None:
    """`--network none`: bring up lo in the container's netns, nothing else."""
    from portique.network import bridge

    bridge.bring_up_loopback(netns_path)


class Networks:
    def __init__(
        self,
        root: Path,
        *,
        run_root: Path,
        default_bridge: str | None = None,
        default_subnet: str = DEFAULT_SUBNET,
        dns_upstreams: Sequence[tuple[str, int]] | None = None,
        dns_port: int = 53,
        pools: Sequence[tuple[str, int]] = ipam.DEFAULT_POOLS,
    ) -> None:
        from portique.network import firewall

        self.root = root
        self.run_dir = run_root / "network"
        self.table = firewall.table_name(root)
        # The real engine root owns portique0; any other root (tests, a second engine)
        # gets a device of its own so two roots never share one bridge.
        self.default_bridge = default_bridge or (
            DEFAULT_BRIDGE if self.table == "portique" else "pq0-" + self.table[-8:]
        )
        self.default_subnet = default_subnet
        self.dns_upstreams = dns_upstreams
        self.dns_port = dns_port
        self.pools = tuple(pools)
        self._local = threading.local()

    # --- database -------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        # One connection per thread: a transaction belongs to its thread.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = pdb.connect(self.root)
            pdb.migrate(conn, ndb.COMPONENT, ndb.MIGRATIONS)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def bridge_alias(self) -> str:
        # The bridge's IFLA_IFALIAS: whose it is (the table), and the engine root, so
        # a bridge outliving its root (a deleted test root) can be recognised.
        return f"portique:{self.table} {self.root.resolve()}"

    def owns(self, alias: str | None) -> bool:
        """True for the alias of a bridge this engine root made."""
        return bool(alias) and str(alias).split(" ", 1)[0] == f"portique:{self.table}"

    def destroy(self) -> None:
        """Remove everything this root made in the kernel and its network tables' rows:
        endpoints, ports, networks (the default one too), bridges, resolvers, nft
        tables. For test teardown and resets; containers lose their network."""
        from portique.network import bridge, dnsserver

        for (cid,) in self.conn.execute("SELECT DISTINCT container_id FROM endpoints").fetchall():
            self.release_container(cid)
        for net in self.list():
            with contextlib.suppress(NotFound):
                self.remove(net.id)
        for link in bridge.host_links():
            if link.kind == "bridge" and self.owns(link.alias):
                bridge.delete_link(link.name)
        for short in dnsserver.recorded(self.run_dir):
            dnsserver.stop(self.run_dir, short)
        self.flush_firewall()

    # --- networks -------------------------------------------------------------------------

    def list(self) -> builtins.list[NetworkRecord]:
        return ndb.all_networks(self.conn)

    def inspect(self, name_or_id: str) -> NetworkRecord:
        return self._find(self.conn, name_or_id)

    def _find(self, conn: sqlite3.Connection, ref: str) -> NetworkRecord:
        row = conn.execute("SELECT * FROM networks WHERE name = ? OR id = ?", (ref, ref)).fetchone()
        if row is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = conn.execute(
                "SELECT * FROM networks WHERE id LIKE ? LIMIT 2", (ref + "%",)
            ).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(f"network id prefix {ref} is ambiguous")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {ref} not found")
        return ndb.network_from_row(row)

    def _taken_subnets(self, conn: sqlite3.Connection) -> builtins.list[ipaddress.IPv4Network]:
        return [ipaddress.IPv4Network(n.subnet) for n in ndb.all_networks(conn)]

    def _host_subnets(self) -> builtins.list[tuple[ipaddress.IPv4Network, str]]:
        from portique.network import bridge

        ours = {n.bridge for n in self.list()}
        return [(net, dev) for net, dev in bridge.host_routes() if dev not in ours]

    def create(
        self,
        name: str,
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        driver: str = "bridge",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> NetworkRecord:
        if name in PREDEFINED:
            raise Conflict(f"network {name} is a pre-defined network and cannot be created")
        rec = self._create(name, subnet, gateway, internal, driver, labels, options, False)
        self.sync_firewall()
        return rec

    def _create(
        self,
        name: str,
        subnet: str | None,
        gateway: str | None,
        internal: bool,
        driver: str,
        labels: dict[str, str] | None,
        options: dict[str, str] | None,
        is_default: bool,
    ) -> NetworkRecord:
        check_name(name)
        if driver != "bridge":
            raise InvalidArgument(f"network driver {driver!r} is not supported (only bridge)")
        options = dict(options or {})
        try:
            mtu = int(options.get(OPT_MTU, "1500"))
        except ValueError:
            raise InvalidArgument(f"invalid {OPT_MTU} {options[OPT_MTU]!r}") from None
        if not 68 <= mtu <= 65535:
            raise InvalidArgument(f"invalid {OPT_MTU} {mtu}: must be 68-65535")
        net_id = secrets.token_hex(32)
        br = options.get(OPT_BRIDGE_NAME) or (
            self.default_bridge if is_default else f"pq-{net_id[:12]}"
        )
        if len(br) > 15 or not re.match(r"^[a-zA-Z0-9_.-]+$", br):
            raise InvalidArgument(f"invalid bridge name {br!r}")
        want = ipam.parse_subnet(subnet) if subnet else None
        if gateway and want is None:
            raise InvalidArgument("--gateway needs --subnet")
        host = self._host_subnets()  # netlink, outside the transaction
        with pdb.transaction(self.conn) as conn:
            if conn.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            if conn.execute("SELECT 1 FROM networks WHERE bridge = ?", (br,)).fetchone():
                raise Conflict(f"bridge {br} is already used by another network")
            taken = self._taken_subnets(conn)
            if want is not None:
                clash = ipam.find_overlap(want, taken)
                if clash is not None:
                    raise Conflict(f"subnet {want} overlaps with another network's subnet {clash}")
                hclash = next((f"{n} on {d}" for n, d in host if want.overlaps(n)), None)
                if hclash is not None:
                    raise Conflict(f"subnet {want} overlaps with host route {hclash}")
                net = want
            else:
                net = ipam.pick_subnet(taken + [n for n, _ in host], self.pools)
            if gateway:
                gw = ipam.parse_address(gateway, "gateway")
                ipam.check_in_subnet(net, gw, "gateway")
            else:
                gw = ipam.default_gateway(net)
            rec = NetworkRecord(
                id=net_id,
                name=name,
                driver=driver,
                bridge=br,
                subnet=str(net),
                gateway=str(gw),
                internal=internal,
                is_default=is_default,
                labels=dict(labels or {}),
                options=options,
                mtu=mtu,
                created=_now(),
            )
            ndb.insert_network(conn, rec)
        return rec

    def ensure_default(self) -> NetworkRecord:
        """The default `bridge` network, made on first use."""
        row = self.conn.execute("SELECT * FROM networks WHERE is_default = 1").fetchone()
        if row is not None:
            return ndb.network_from_row(row)
        want = ipaddress.IPv4Network(self.default_subnet)
        taken = [n for n, _ in self._host_subnets()] + self._taken_subnets(self.conn)
        subnet = str(want) if ipam.find_overlap(want, taken) is None else None
        try:
            rec = self._create(DEFAULT_NAME, subnet, None, False, "bridge", None, None, True)
        except Conflict:
            # Another process made it first.
            row = self.conn.execute("SELECT * FROM networks WHERE is_default = 1").fetchone()
            if row is None:
                raise
            return ndb.network_from_row(row)
        self.sync_firewall()
        return rec

    def remove(self, name_or_id: str) -> None:
        from portique.network import bridge, dnsserver

        with pdb.transaction(self.conn) as conn:
            net = self._find(conn, name_or_id)
            n = conn.execute(
                "SELECT COUNT(*) FROM endpoints WHERE network_id = ?", (net.id,)
            ).fetchone()[0]
            if n:
                raise Conflict(
                    f"error while removing network: network {net.name} id {net.id} has active endpoints"
                )
            conn.execute("DELETE FROM networks WHERE id = ?", (net.id,))
        dnsserver.stop(self.run_dir, net.id)
        (self.run_dir / f"dns-{net.id[:12]}.lock").unlink(missing_ok=True)
        bridge.delete_link(net.bridge)
        self.sync_firewall()

    def prune(self) -> builtins.list[str]:
        removed = []
        for net in self.list():
            if net.is_default:
                continue
            try:
                self.remove(net.id)
            except (Conflict, NotFound):
                continue
            removed.append(net.name)
        return removed

    # --- endpoints and ports: the functions of network/attachment.py, as methods --------

    endpoints = attachment.endpoints
    network_endpoints = attachment.network_endpoints
    connect = attachment.connect
    disconnect = attachment.disconnect
    release_container = attachment.release_container
    setup_container = attachment.setup_container
    publish = attachment.publish
    ports = attachment.ports

    # --- files for the container ----------------------------------------------------------

    def resolv_conf(
        self,
        container_id: str,
        *,
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
        host_resolv: Path = Path("/etc/resolv.conf"),
    ) -> str:
        """/etc/resolv.conf for the container.

        On a user-defined network: the embedded DNS on the gateway (it relays other
        names to the host's resolvers; `dns` servers are not used as its upstreams).
        Otherwise: `dns` if given, else the host's resolvers minus loopback ones
        (unreachable from a netns), else Docker's fallback. `dns_search` and
        `dns_options` replace the host's search/options lines when given."""
        for server in dns:
            ipam.parse_address(server, "DNS server")
        try:
            host = host_resolv.read_text()
        except OSError:
            host = ""
        lines = [line.split() for line in host.splitlines()]
        search = (
            [f"search {' '.join(dns_search)}"]
            if dns_search
            else [" ".join(p) for p in lines if p[:1] in (["search"], ["domain"])]
        )
        options = (
            [f"options {' '.join(dns_options)}"]
            if dns_options
            else [" ".join(p) for p in lines if p[:1] == ["options"]]
        )
        named = [ep for ep in self.endpoints(container_id) if self._resolves(ep)]
        if named:
            servers = [self.inspect(named[0].network_id).gateway]
        elif dns:
            servers = list(dns)
        else:
            servers = []
            for p in lines:
                if len(p) >= 2 and p[0] == "nameserver":
                    with contextlib.suppress(ValueError):
                        if not ipaddress.ip_address(p[1]).is_loopback:
                            servers.append(p[1])
            if not servers:
                servers = list(FALLBACK_DNS)
        return "".join(f"nameserver {x}\n" for x in servers) + "".join(
            f"{x}\n" for x in search + options
        )

    def _resolves(self, ep: Endpoint) -> bool:
        return self.inspect(ep.network_id).resolves_names

    def hosts_entries(self, container_id: str) -> builtins.list[tuple[str, builtins.list[str]]]:
        """(ip, names) per endpoint: the container's name and its aliases on that network.
        The engine adds localhost lines and the hostname."""
        return [
            (ep.ip, list(dict.fromkeys([ep.container_name, *ep.aliases])))
            for ep in self.endpoints(container_id)
        ]

    # --- firewall: network/firewall_sync.py, as methods ----------------------------------

    sync_firewall = firewall_sync.sync  # make the nftables tables match the database
    flush_firewall = firewall_sync.flush

    # --- repair -----------------------------------------------------------------------------

    def repair(
        self,
        live_containers: Iterable[str] | None = None,
        *,
        creating_grace: float = CREATING_GRACE_SECONDS,
        force_firewall: bool = False,
    ) -> RepairReport:
        """Undo leftovers of crashes (network/repair.py). `live_containers`: None to go
        by kernel facts only (an endpoint whose veth died with its netns is released);
        else the ids of every container the engine still has that is not stopped
        (created and starting ones included, or a concurrent start loses its network)."""
        from portique.network.repair import repair

        return repair(self, live_containers, creating_grace, force_firewall)

    # --- presentation -----------------------------------------------------------------------

    def inspect_json(self, name_or_id: str) -> dict[str, Any]:
        """Docker's `network inspect` object (network/present.py)."""
        from portique.network.present import inspect_json

        return inspect_json(self, name_or_id)


__all__ = [
    "ContainerNetwork",
    "Endpoint",
    "NetworkRecord",
    "NetworkRequest",
    "Networks",
    "PortMapping",
    "RepairReport",
    "bring_up_loopback",
    "check_alias",
    "check_name",
    "exposed_ports",
    "format_ports",
    "parse_port_spec",
]
