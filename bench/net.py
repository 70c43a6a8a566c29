#!/usr/bin/env python3
"""Network data path: throughput and latency through portique's bridges.

Usage (as root, from the repository):
    .venv/bin/python bench/net.py [--seconds 3] [--roundtrips 2000] [--connects 300]

Sets up, in a throwaway engine root, one user network with two "containers"
(network namespaces made here, wired by portique.network exactly as the engine
wires containers) and publishes the server's ports on 127.0.0.1, then measures:

  throughput (iperf3, one TCP stream, --seconds each):
    host -> container, published port 127.0.0.1:P  (kernel DNAT, no proxy process)
    host -> container, its address directly         (the bridge alone, for reference)
    container -> container on the network
    host -> host over loopback                       (the machine's ceiling)
  latency (a Python echo server in the container; same client for every path):
    round trip of 1 byte on an open connection: median and p99
    connect + 1-byte round trip + close: median (conntrack and DNAT per connection)

Peers (docker, podman): there is no iperf3 image offline, so a peer is only
reported ("not installed", "client installed, no engine running", or
"installed, not measured"). Every namespace, veth, bridge, nft table and process made here is
removed at the end; traffic stays on loopback and inside these namespaces.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from portique.network.networks import Networks  # noqa: E402
from portique.network.types import PortMapping  # noqa: E402

IPERF_PORT = 5201
ECHO_PORT = 7777

ECHO_SERVER = """
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1]))); srv.listen(128)
def serve(c):
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(64)
            if not b:
                return
            c.sendall(b)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

PING_CLIENT = """
import json, socket, sys, time
host, port, n, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rt = []
for _ in range(n):
    t = time.perf_counter_ns(); s.sendall(b"x"); s.recv(1); rt.append(time.perf_counter_ns() - t)
s.close()
cc = []
for _ in range(conns):
    t = time.perf_counter_ns()
    c = socket.create_connection((host, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"x"); c.recv(1); c.close()
    cc.append(time.perf_counter_ns() - t)
print(json.dumps({"rt": rt, "cc": cc}))
"""


def random_subnet() -> str:
    from portique.network import bridge

    routed = [n for n, _ in bridge.host_routes()]
    import ipaddress

    for _ in range(200):
        cand = ipaddress.IPv4Network(
            f"10.{secrets.randbelow(127) + 128}.{secrets.randbelow(256)}.0/24"
        )
        if not any(cand.overlaps(r) for r in routed):
            return str(cand)
    raise SystemExit("no free 10.x subnet for the benchmark")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """Namespaces, processes and a Networks, all undone by close()."""

    def __init__(self, tmp: Path) -> None:
        self.nets = Networks(tmp / "root", run_root=tmp / "run", dns_upstreams=[])
        self.netns: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def ns(self) -> Path:
        name = "pqb-" + secrets.token_hex(4)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.netns.append(name)
        return Path("/run/netns") / name

    def spawn(self, ns: Path, *argv: str) -> None:
        self.procs.append(
            subprocess.Popen(
                ["ip", "netns", "exec", ns.name, *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        with contextlib.suppress(Exception):
            for row in self.nets.conn.execute(
                "SELECT DISTINCT container_id FROM endpoints"
            ).fetchall():
                self.nets.release_container(row[0])
            for n in self.nets.list():
                self.nets.remove(n.id)
        with contextlib.suppress(Exception):
            self.nets.flush_firewall()
        for name in self.netns:
            subprocess.run(["ip", "netns", "del", name], check=False)


def wait_listening(ns: Path | None, host: str, port: int, timeout: float = 10.0) -> None:
    probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()"
    prefix = ["ip", "netns", "exec", ns.name] if ns else []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [*prefix, sys.executable, "-c", probe, host, str(port)], capture_output=True
        )
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"server on {host}:{port} did not come up")


def iperf(ns: Path | None, host: str, port: int, seconds: int) -> float:
    """Gbit/s received, one TCP stream."""
    prefix = ["ip", "netns", "exec", ns.name] if ns else []
    r = subprocess.run(
        [*prefix, "iperf3", "-c", host, "-p", str(port), "-t", str(seconds), "-J"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"iperf3 to {host}:{port} failed: {r.stdout[-300:]} {r.stderr[-300:]}")
    return float(json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9


def ping(ns: Path | None, host: str, port: int, n: int, conns: int) -> tuple[float, float, float]:
    """(median rt µs, p99 rt µs, median connect+rt+close µs)."""
    prefix = ["ip", "netns", "exec", ns.name] if ns else []
    r = subprocess.run(
        [*prefix, sys.executable, "-c", PING_CLIENT, host, str(port), str(n), str(conns)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = json.loads(r.stdout)
    rt = sorted(data["rt"])
    return (
        statistics.median(rt) / 1000,
        rt[int(len(rt) * 0.99) - 1] / 1000,
        statistics.median(data["cc"]) / 1000,
    )


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    with tempfile.TemporaryDirectory(prefix="pq-bench-net-") as tmp:
        lb = Lab(Path(tmp))
        try:
            yield lb
        finally:
            lb.close()


def peer_state(peer: str) -> str:
    if shutil.which(peer) is None:
        return "not installed"
    r = subprocess.run([peer, "info"], capture_output=True, timeout=30, check=False)
    if r.returncode != 0:
        return "client installed, no engine running: not measured"
    return "installed, not measured (no iperf3 image offline)"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="iperf3 runs per path (median)")
    ap.add_argument("--roundtrips", type=int, default=2000)
    ap.add_argument("--connects", type=int, default=300)
    a = ap.parse_args()
    if shutil.which("iperf3") is None:
        raise SystemExit(
            "bench/net.py needs iperf3 (apt-get install iperf3; scripts/setup.sh does)"
        )

    with lab() as lb:
        nets = lb.nets
        net = nets.create("benchnet", subnet=random_subnet())
        srv_ns, cli_ns = lb.ns(), lb.ns()
        t = time.perf_counter()
        srv = nets.connect(net.id, secrets.token_hex(32), srv_ns, container_name="srv")
        connect_ms = (time.perf_counter() - t) * 1000
        nets.connect(net.id, secrets.token_hex(32), cli_ns, container_name="cli")
        hp_iperf, hp_echo = free_port(), free_port()
        t = time.perf_counter()
        nets.publish(
            srv.container_id,
            [
                PortMapping(IPERF_PORT, hp_iperf, "127.0.0.1"),
                PortMapping(ECHO_PORT, hp_echo, "127.0.0.1"),
            ],
        )
        publish_ms = (time.perf_counter() - t) * 1000
        lb.spawn(srv_ns, "iperf3", "-s", "-p", str(IPERF_PORT))
        lb.spawn(srv_ns, sys.executable, "-c", ECHO_SERVER, str(ECHO_PORT))
        wait_listening(cli_ns, srv.ip, IPERF_PORT)
        wait_listening(cli_ns, srv.ip, ECHO_PORT)
        # A host-side iperf3/echo server on loopback for the ceiling.
        lo_iperf, lo_echo = free_port(), free_port()
        lb.procs.append(
            subprocess.Popen(
                ["iperf3", "-s", "-p", str(lo_iperf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        lb.procs.append(
            subprocess.Popen(
                [sys.executable, "-c", ECHO_SERVER, str(lo_echo)],
                stdout=subprocess.DEVNULL,
            )
        )
        wait_listening(None, "127.0.0.1", lo_iperf)
        wait_listening(None, "127.0.0.1", lo_echo)

        paths = [
            ("host -> container, published 127.0.0.1 port", None, "127.0.0.1", hp_iperf, hp_echo),
            ("host -> container, direct address", None, srv.ip, IPERF_PORT, ECHO_PORT),
            ("container -> container, same network", cli_ns, srv.ip, IPERF_PORT, ECHO_PORT),
            ("host -> host loopback (ceiling)", None, "127.0.0.1", lo_iperf, lo_echo),
        ]
        print(
            f"portique: connect {connect_ms:.1f} ms (first, creates the bridge), publish {publish_ms:.1f} ms"
        )
        print(f"{'path':46} {'Gbit/s':>8} {'rt med µs':>10} {'rt p99 µs':>10} {'conn µs':>9}")
        results = {}
        for label, ns, host, p_iperf, p_echo in paths:
            gbps = statistics.median(iperf(ns, host, p_iperf, a.seconds) for _ in range(a.repeat))
            med, p99, cc = ping(ns, host, p_echo, a.roundtrips, a.connects)
            results[label] = gbps
            print(f"{label:46} {gbps:8.2f} {med:10.1f} {p99:10.1f} {cc:9.1f}")
        pub = results[paths[0][0]]
        direct = results[paths[1][0]]
        print(
            f"published / direct throughput: {pub / direct:.2f}x (DNAT path, no proxy process; noisy on a shared 2-core VM)"
        )
        for peer in ("docker", "podman"):
            print(f"{peer}: {peer_state(peer)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
