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

Order of every multi-step operation (so a crash leaves what repair() undoes):
connect = lease (endpoint row "creating", one BEGIN IMMEDIATE transaction) ->
bridge -> veth pair -> row "active" -> embedded DNS; publish = port rows ->
nft sync; removal runs the other way. The nftables tables are re-rendered
from the database as a whole (network/firewall.py).

Environment: PORTIQUE_DNS_UPSTREAMS="ip[:port],..." replaces the host's resolvers
(from /etc/resolv.conf) as the embedded DNS servers' upstreams; empty: none.

Host effects, as Docker has them: net.ipv4.ip_forward is set to 1 when a
container joins a non-internal network (never reset); each bridge gets
route_localnet=1 (published ports on 127.0.0.1).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import ipaddress
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portique import db as pdb
from portique.errors import Conflict, InvalidArgument, NotFound, shown
from portique.network import db as ndb
from portique.network import ipam
from portique.network.ports import exposed_ports, format_ports, parse_port_spec
from portique.network.types import (
    ContainerNetwork,
    Endpoint,
    NetworkRecord,
    NetworkRequest,
    PortMapping,
    PublishedPort,
)

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # fullmatch: `$` lets "a\n" in
MAX_NAME = 255  # a DNS name at most
DEFAULT_NAME = "bridge"
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


def check_alias(alias: str) -> None:
    """A network-scoped alias: a name for the DNS server and /etc/hosts, so one
    printable word (a newline would add a hosts line of the caller's choosing)."""
    if not alias or not alias.isprintable() or any(c.isspace() for c in alias):
        raise InvalidArgument(f"invalid network alias '{shown(alias)}': use one word, no blanks")
    if len(alias) > MAX_NAME:
        raise InvalidArgument(
            f"invalid network alias '{shown(alias)}': at most {MAX_NAME} characters"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _host_veth_name(network_id: str, container_id: str) -> str:
    # 15 characters max for a Linux interface name: "pq" + 11 hex.
    return "pq" + hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()[:11]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), "53"
    ipam.parse_address(host, "DNS upstream")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid DNS upstream {text!r}")
    return host, int(port)


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
    def _alias(self) -> str:
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

    # --- endpoints ------------------------------------------------------------------------

    def endpoints(self, container_id: str) -> builtins.list[Endpoint]:
        return [
            ep
            for ep, state in ndb.endpoints_where(self.conn, "e.container_id = ?", (container_id,))
            if state == "active"
        ]

    def network_endpoints(self, name_or_id: str) -> builtins.list[Endpoint]:
        net = self.inspect(name_or_id)
        return [
            ep
            for ep, state in ndb.endpoints_where(self.conn, "e.network_id = ?", (net.id,))
            if state == "active"
        ]

    def connect(
        self,
        name_or_id: str,
        container_id: str,
        netns_path: Path,
        *,
        container_name: str,
        aliases: Sequence[str] = (),
        ip: str | None = None,
        mac: str | None = None,
    ) -> Endpoint:
        from portique.network import bridge, dnsserver

        net = self.ensure_default() if name_or_id == DEFAULT_NAME else self.inspect(name_or_id)
        if aliases and not net.resolves_names:
            raise InvalidArgument(
                "network-scoped aliases are only supported for user-defined networks"
            )
        for alias in aliases:
            check_alias(alias)
        subnet = ipaddress.IPv4Network(net.subnet)
        want_ip = None
        if ip is not None:
            if net.is_default:
                raise InvalidArgument(
                    "user specified IP address is supported only on user-defined networks"
                )
            want_ip = ipam.parse_address(ip, "IP address")
            ipam.check_in_subnet(subnet, want_ip, "IP address")
        want_mac = ipam.parse_mac(mac) if mac else None
        name = container_name.lstrip("/")
        with pdb.transaction(self.conn) as conn:
            if conn.execute("SELECT 1 FROM networks WHERE id = ?", (net.id,)).fetchone() is None:
                raise NotFound(f"network {name_or_id} not found")
            if conn.execute(
                "SELECT 1 FROM endpoints WHERE network_id = ? AND container_id = ?",
                (net.id, container_id),
            ).fetchone():
                raise Conflict(f"container {name} is already attached to network {net.name}")
            used = {
                ipaddress.IPv4Address(r[0])
                for r in conn.execute("SELECT ip FROM endpoints WHERE network_id = ?", (net.id,))
            }
            gw = ipaddress.IPv4Address(net.gateway)
            if want_ip is not None:
                if want_ip in used or want_ip == gw:
                    raise Conflict(f"address {want_ip} is already in use on network {net.name}")
                addr = want_ip
            else:
                addr = ipam.next_free_address(subnet, gw, used)
            taken_if = {
                r[0]
                for r in conn.execute(
                    "SELECT ifname FROM endpoints WHERE container_id = ?", (container_id,)
                )
            }
            ifname = next(f"eth{i}" for i in range(len(taken_if) + 1) if f"eth{i}" not in taken_if)
            ep = Endpoint(
                network_id=net.id,
                network=net.name,
                container_id=container_id,
                container_name=name,
                ip=str(addr),
                prefixlen=subnet.prefixlen,
                gateway=None if net.internal else net.gateway,
                mac=want_mac or ipam.mac_for_address(addr),
                host_veth=_host_veth_name(net.id, container_id),
                ifname=ifname,
                aliases=tuple(dict.fromkeys(a for a in aliases if a)),
                netns=str(netns_path),
            )
            ndb.insert_endpoint(conn, ep, "creating", time.time())
        try:
            created = not bridge.link_exists(net.bridge)
            bridge.ensure_bridge(net.bridge, net.gateway, subnet.prefixlen, net.mtu, self._alias)
            if created:
                # Another engine root may have routed this subnet since `network create`
                # (roots do not share a database): refuse rather than misroute.
                clash = bridge.foreign_routes(subnet, net.bridge)
                if clash:
                    bridge.delete_link(net.bridge)
                    raise Conflict(
                        f"subnet {subnet} of network {net.name} overlaps with host route {clash[0]}"
                    )
            if not net.internal:
                bridge.write_sysctl("net/ipv4/ip_forward", "1")
            bridge.add_veth(
                bridge=net.bridge,
                host_name=ep.host_veth,
                netns=netns_path,
                ifname=ep.ifname,
                ip=ep.ip,
                prefixlen=ep.prefixlen,
                gateway=ep.gateway,
                mac=ep.mac,
                mtu=net.mtu,
            )
            with pdb.transaction(self.conn) as conn:
                conn.execute(
                    "UPDATE endpoints SET state = 'active' WHERE network_id = ? AND container_id = ?",
                    (net.id, container_id),
                )
            if created:
                self.sync_firewall()
            if net.resolves_names:
                dnsserver.ensure_running(
                    self.run_dir, self.root / pdb.DB_NAME, net.id, net.gateway,
                    self._upstreams(net), self.dns_port,
                )  # fmt: skip
        except BaseException as exc:
            try:
                self._drop_endpoint(ep)
            except Exception as cleanup:  # keep the cause, note the cleanup failure
                exc.add_note(f"cleanup failed: {cleanup}")
            raise
        return ep

    def _upstreams(self, net: NetworkRecord) -> builtins.list[tuple[str, int]]:
        """Where the embedded DNS relays foreign names: nowhere for --internal networks
        (as Docker since 26: no DNS tunnel out of a sealed network), else the host's."""
        from portique.network import dnsserver

        if net.internal:
            return []
        if self.dns_upstreams is not None:
            return list(self.dns_upstreams)
        env = os.environ.get("PORTIQUE_DNS_UPSTREAMS")
        if env is not None:
            # "host:port,host:port"; empty: relay nowhere (air-gapped hosts, tests).
            return [_host_port(item) for item in env.split(",") if item.strip()]
        return dnsserver.host_resolvers()

    def _drop_endpoint(self, ep: Endpoint) -> bool:
        """Undo one endpoint: veth (its peer goes with it), ports to its address, lease.
        Returns True if ports were removed (the caller re-syncs the firewall)."""
        # After the container's exit the kernel has usually destroyed the pair with
        # its namespace already: then skip pyroute2's import (~70 ms of CPU in the
        # exiting monitor, competing with the next container's start).
        if os.path.lexists(f"/sys/class/net/{ep.host_veth}"):
            from portique.network import bridge

            bridge.delete_link(ep.host_veth)
        with pdb.transaction(self.conn) as conn:
            cur = conn.execute(
                "DELETE FROM ports WHERE container_id = ? AND container_ip = ?",
                (ep.container_id, ep.ip),
            )
            conn.execute(
                "DELETE FROM endpoints WHERE network_id = ? AND container_id = ?",
                (ep.network_id, ep.container_id),
            )
            left = conn.execute(
                "SELECT COUNT(*) FROM endpoints WHERE network_id = ?", (ep.network_id,)
            ).fetchone()[0]
        if not left:
            from portique.network import dnsserver

            dnsserver.stop(self.run_dir, ep.network_id)
        return cur.rowcount > 0

    def disconnect(self, name_or_id: str, container_id: str) -> None:
        net = self.inspect(name_or_id)
        found = ndb.endpoints_where(
            self.conn, "e.network_id = ? AND e.container_id = ?", (net.id, container_id)
        )
        if not found:
            raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
        if self._drop_endpoint(found[0][0]):
            self.sync_firewall()

    def release_container(self, container_id: str) -> None:
        """Remove every endpoint, port and lease of a container; safe to repeat."""
        resync = False
        for ep, _state in ndb.endpoints_where(self.conn, "e.container_id = ?", (container_id,)):
            resync |= self._drop_endpoint(ep)
        with pdb.transaction(self.conn) as conn:
            resync |= (
                conn.execute("DELETE FROM ports WHERE container_id = ?", (container_id,)).rowcount
                > 0
            )
        if resync:
            self.sync_firewall()

    def setup_container(
        self,
        container_id: str,
        netns_path: Path,
        *,
        container_name: str,
        networks: Sequence[NetworkRequest] = (NetworkRequest(),),
        ports: Iterable[PortMapping] = (),
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
    ) -> ContainerNetwork:
        """Everything `run`/`start` needs in one call: connect to each network in order
        (the first one gets eth0 and the default route), publish `ports`, and return the
        resolv.conf and hosts lines to write. All or nothing: on any failure whatever
        was made for the container is released before the error propagates."""
        try:
            eps = tuple(
                self.connect(
                    r.network,
                    container_id,
                    netns_path,
                    container_name=container_name,
                    aliases=r.aliases,
                    ip=r.ip,
                    mac=r.mac,
                )
                for r in networks
            )
            published = tuple(self.publish(container_id, list(ports)))
            return ContainerNetwork(
                endpoints=eps,
                ports=published,
                resolv_conf=self.resolv_conf(
                    container_id, dns=dns, dns_search=dns_search, dns_options=dns_options
                ),
                hosts=tuple((ip, tuple(n)) for ip, n in self.hosts_entries(container_id)),
            )
        except BaseException as exc:
            try:
                self.release_container(container_id)
            except Exception as cleanup:
                exc.add_note(f"cleanup failed: {cleanup}")
            raise

    # --- ports ----------------------------------------------------------------------------

    def publish(
        self, container_id: str, ports: Iterable[PortMapping]
    ) -> builtins.list[PortMapping]:
        """Install DNAT for `ports` to the container's first non-internal endpoint."""
        from portique.network.ports import choose_host_ports

        wanted = list(ports)
        if not wanted:
            return []
        eps = [ep for ep in self.endpoints(container_id) if ep.gateway is not None]
        if not eps:
            raise InvalidArgument(
                f"container {container_id[:12]} has no non-internal network to publish ports on"
            )
        target = eps[0]
        with pdb.transaction(self.conn) as conn:
            taken = [p.mapping for p in ndb.published_ports(conn)]
            chosen = choose_host_ports(wanted, taken)
            for m in chosen:
                ndb.insert_port(conn, PublishedPort(container_id, target.ip, m))
        try:
            self.sync_firewall()
        except BaseException:
            with pdb.transaction(self.conn) as conn:
                for m in chosen:
                    conn.execute(
                        "DELETE FROM ports WHERE container_id = ? AND host_ip = ? AND host_port = ?"
                        " AND proto = ?",
                        (container_id, m.host_ip, m.host_port, str(m.proto)),
                    )
            raise
        return chosen

    def ports(self, container_id: str) -> builtins.list[PortMapping]:
        return [p.mapping for p in ndb.published_ports(self.conn, container_id)]

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

    # --- firewall ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _fw_lock(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.run_dir / "firewall.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def firewall_script(self) -> str:
        from portique.network import firewall

        nets = [
            firewall.BridgeRules(n.id, n.bridge, n.subnet, n.gateway, n.internal)
            for n in self.list()
        ]
        return firewall.render_ruleset(
            self.table, nets, ndb.published_ports(self.conn), owner=str(self.root.resolve())
        )

    def sync_firewall(self, *, force: bool = False) -> None:
        """Make portique's nftables tables match the database (under a lock, reading the
        database inside it, so the last writer always installs the newest state).

        The digest of the last script applied is kept in the run directory (a tmpfs:
        gone at reboot, like the tables): an unchanged ruleset costs no `nft` run."""
        from portique.network import firewall

        stamp = self.run_dir / "firewall.sha256"
        with self._fw_lock():
            script = self.firewall_script()
            digest = hashlib.sha256(script.encode()).hexdigest()
            if not force:
                with contextlib.suppress(OSError):
                    if stamp.read_text() == digest:
                        return
            stamp.unlink(missing_ok=True)
            firewall.apply(script)
            stamp.write_text(digest)

    def flush_firewall(self) -> None:
        from portique.network import firewall

        with self._fw_lock():
            (self.run_dir / "firewall.sha256").unlink(missing_ok=True)
            try:
                firewall.apply(firewall.render_flush(self.table))
            except firewall.FirewallError as exc:
                # A kernel without nf_tables (the cgroup v2 test VM's) holds no
                # tables of ours to flush; any other failure is real.
                if "Protocol not supported" not in str(exc):
                    raise

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
    "exposed_ports",
    "format_ports",
    "parse_port_spec",
]
