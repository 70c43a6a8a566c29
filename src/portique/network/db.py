"""The network layer's tables in portique.db (component "network").

Schema, version 1:

    networks(id TEXT PRIMARY KEY,            -- 64 hex
             name TEXT UNIQUE NOT NULL,
             driver TEXT NOT NULL,           -- "bridge"
             bridge TEXT UNIQUE NOT NULL,    -- Linux bridge device
             subnet TEXT NOT NULL, gateway TEXT NOT NULL,
             internal INTEGER NOT NULL, is_default INTEGER NOT NULL,
             labels TEXT NOT NULL, options TEXT NOT NULL,   -- JSON objects
             mtu INTEGER NOT NULL, created TEXT NOT NULL)

    endpoints(network_id TEXT NOT NULL REFERENCES networks(id),
              container_id TEXT NOT NULL, container_name TEXT NOT NULL,
              aliases TEXT NOT NULL,          -- JSON list
              ip TEXT NOT NULL, mac TEXT NOT NULL,
              host_veth TEXT UNIQUE NOT NULL, ifname TEXT NOT NULL,
              netns TEXT NOT NULL,
              state TEXT NOT NULL,            -- "creating" until wired, then "active"
              created REAL NOT NULL,          -- time.time()
              PRIMARY KEY (network_id, container_id),
              UNIQUE (network_id, ip))        -- the IP lease: never handed out twice

    ports(container_id TEXT NOT NULL, container_ip TEXT NOT NULL,
          host_ip TEXT NOT NULL, host_port INTEGER NOT NULL,
          container_port INTEGER NOT NULL, proto TEXT NOT NULL,
          UNIQUE (host_ip, host_port, proto))

An endpoint row *is* the IP lease: it is inserted (state "creating") in the same
BEGIN IMMEDIATE transaction that picked its address, before any kernel object
exists, so a crash leaves a row that repair() finds and undoes.
"""

from __future__ import annotations

import json
import sqlite3

from portique.network.types import Endpoint, NetworkRecord, PortMapping, Proto, PublishedPort

COMPONENT = "network"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT UNIQUE NOT NULL,
        driver TEXT NOT NULL,
        bridge TEXT UNIQUE NOT NULL,
        subnet TEXT NOT NULL,
        gateway TEXT NOT NULL,
        internal INTEGER NOT NULL,
        is_default INTEGER NOT NULL,
        labels TEXT NOT NULL,
        options TEXT NOT NULL,
        mtu INTEGER NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE endpoints (
        network_id TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL,
        container_name TEXT NOT NULL,
        aliases TEXT NOT NULL,
        ip TEXT NOT NULL,
        mac TEXT NOT NULL,
        host_veth TEXT UNIQUE NOT NULL,
        ifname TEXT NOT NULL,
        netns TEXT NOT NULL,
        state TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
    );
    CREATE INDEX endpoints_container ON endpoints(container_id);
    CREATE TABLE ports (
        container_id TEXT NOT NULL,
        container_ip TEXT NOT NULL,
        host_ip TEXT NOT NULL,
        host_port INTEGER NOT NULL,
        container_port INTEGER NOT NULL,
        proto TEXT NOT NULL,
        UNIQUE (host_ip, host_port, proto)
    );
    CREATE INDEX ports_container ON ports(container_id);
    """,
]


def network_from_row(row: sqlite3.Row) -> NetworkRecord:
    return NetworkRecord(
        id=row["id"],
        name=row["name"],
        driver=row["driver"],
        bridge=row["bridge"],
        subnet=row["subnet"],
        gateway=row["gateway"],
        internal=bool(row["internal"]),
        is_default=bool(row["is_default"]),
        labels=json.loads(row["labels"]),
        options=json.loads(row["options"]),
        mtu=row["mtu"],
        created=row["created"],
    )


def insert_network(conn: sqlite3.Connection, n: NetworkRecord) -> None:
    conn.execute(
        "INSERT INTO networks(id, name, driver, bridge, subnet, gateway, internal, is_default,"
        " labels, options, mtu, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            n.id,
            n.name,
            n.driver,
            n.bridge,
            n.subnet,
            n.gateway,
            int(n.internal),
            int(n.is_default),
            json.dumps(n.labels, sort_keys=True),
            json.dumps(n.options, sort_keys=True),
            n.mtu,
            n.created,
        ),
    )


def all_networks(conn: sqlite3.Connection) -> list[NetworkRecord]:
    rows = conn.execute("SELECT * FROM networks ORDER BY created, name").fetchall()
    return [network_from_row(r) for r in rows]


def endpoint_from_row(row: sqlite3.Row, net: NetworkRecord) -> Endpoint:
    return Endpoint(
        network_id=net.id,
        network=net.name,
        container_id=row["container_id"],
        container_name=row["container_name"],
        ip=row["ip"],
        prefixlen=net.prefixlen,
        gateway=None if net.internal else net.gateway,
        mac=row["mac"],
        host_veth=row["host_veth"],
        ifname=row["ifname"],
        aliases=tuple(json.loads(row["aliases"])),
        netns=row["netns"],
    )


def endpoints_where(
    conn: sqlite3.Connection, where: str, params: tuple[object, ...]
) -> list[tuple[Endpoint, str]]:
    """Endpoints (with their row state) matching a WHERE clause over `endpoints e`."""
    rows = conn.execute(
        "SELECT n.*, e.container_id, e.container_name, e.aliases, e.ip, e.mac, e.host_veth,"
        " e.ifname, e.netns, e.state FROM endpoints e"
        " JOIN networks n ON n.id = e.network_id WHERE " + where + " ORDER BY e.ifname",
        params,
    ).fetchall()
    out = []
    for r in rows:
        net = network_from_row(r)
        out.append((endpoint_from_row(r, net), r["state"]))
    return out


def insert_endpoint(conn: sqlite3.Connection, ep: Endpoint, state: str, created: float) -> None:
    conn.execute(
        "INSERT INTO endpoints(network_id, container_id, container_name, aliases, ip, mac,"
        " host_veth, ifname, netns, state, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            ep.network_id,
            ep.container_id,
            ep.container_name,
            json.dumps(list(ep.aliases)),
            ep.ip,
            ep.mac,
            ep.host_veth,
            ep.ifname,
            ep.netns,
            state,
            created,
        ),
    )


def published_ports(
    conn: sqlite3.Connection, container_id: str | None = None
) -> list[PublishedPort]:
    if container_id is None:
        rows = conn.execute("SELECT * FROM ports ORDER BY rowid").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM ports WHERE container_id = ? ORDER BY rowid", (container_id,)
        ).fetchall()
    return [
        PublishedPort(
            container_id=r["container_id"],
            container_ip=r["container_ip"],
            mapping=PortMapping(
                container_port=r["container_port"],
                host_port=r["host_port"],
                host_ip=r["host_ip"],
                proto=Proto(r["proto"]),
            ),
        )
        for r in rows
    ]


def insert_port(conn: sqlite3.Connection, p: PublishedPort) -> None:
    m = p.mapping
    conn.execute(
        "INSERT INTO ports(container_id, container_ip, host_ip, host_port, container_port, proto)"
        " VALUES (?,?,?,?,?,?)",
        (p.container_id, p.container_ip, m.host_ip, m.host_port, m.container_port, str(m.proto)),
    )


__all__ = [
    "COMPONENT",
    "MIGRATIONS",
    "all_networks",
    "endpoint_from_row",
    "endpoints_where",
    "insert_endpoint",
    "insert_network",
    "insert_port",
    "network_from_row",
    "published_ports",
]
