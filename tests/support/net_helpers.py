"""Helpers for the network tests (fixtures in integration/network/conftest.py):
namespaces made with `ip netns add`, a Networks bound to a throwaway engine root, busybox servers
inside namespaces, and a fake upstream resolver on 127.0.0.1 (so forwarding is
tested without leaving the host).

Every test subnet is drawn at random from 10.128.0.0/9 and only ever used inside
bridges and namespaces these fixtures make; teardown removes every namespace,
veth, bridge, nft table and DNS process, and kills only the processes it started.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from portique.network import bridge, dns, dnsserver, firewall
from portique.network.networks import Networks

BUSYBOX = "/bin/busybox"
UPSTREAM_ANSWER = "10.9.9.9"


def random_subnet() -> str:
    """A /24 in 10.128.0.0/9 not routed on this host."""
    routed = [n for n, _ in bridge.host_routes()]
    for _ in range(200):
        import ipaddress

        cand = ipaddress.IPv4Network(f"10.{random.randint(128, 254)}.{random.randint(0, 255)}.0/24")
        if not any(cand.overlaps(r) for r in routed):
            return str(cand)
    raise RuntimeError("no free test subnet")


class NetnsFactory:
    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self) -> Path:
        name = "pqt-" + secrets.token_hex(4)
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        return Path("/run/netns") / name

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], check=False)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def set_resolv_conf(netns: Path, text: str) -> None:
    """`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf."""
    d = Path("/etc/netns") / netns.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(text)


def nsexec(netns: Path, *argv: str, timeout: float = 20, check: bool = False,
           input: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        ["ip", "netns", "exec", netns.name, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        input=input,
    )


class Procs:
    """Processes started by a test, killed by pid in teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, netns: Path, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["ip", "netns", "exec", netns.name, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def httpd(self, netns: Path, docroot: Path, port: int = 80) -> subprocess.Popen[bytes]:
        return self.start(netns, BUSYBOX, "httpd", "-f", "-p", str(port), "-h", str(docroot))

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)


class FakeUpstream:
    """A resolver on 127.0.0.1 answering every A question with UPSTREAM_ANSWER."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            q = dns.parse_question(data)
            self.queries.append(q.name)
            self.sock.sendto(dns.build_response(q, [UPSTREAM_ANSWER]), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def make_networks(tmp_path: Path, upstream: FakeUpstream | None = None) -> Networks:
    return Networks(
        tmp_path / "root",
        run_root=tmp_path / "run",
        default_bridge="pqt" + secrets.token_hex(4),
        default_subnet=random_subnet(),
        dns_upstreams=[("127.0.0.1", upstream.port)] if upstream else [],
        pools=[("10.128.0.0/9", 24)],
    )


def teardown_networks(nets: Networks) -> None:
    """Remove everything `nets` made, whatever state a failed test left."""
    with contextlib.suppress(Exception):
        nets.destroy()
    with contextlib.suppress(Exception):
        cids = {r[0] for r in nets.conn.execute("SELECT container_id FROM endpoints")}
        for cid in cids:
            nets.release_container(cid)
        for n in nets.list():
            with contextlib.suppress(Exception):
                nets.remove(n.id)
    for link in bridge.host_links():
        if link.kind == "bridge" and nets.owns(link.alias):
            bridge.delete_link(link.name)
    for short in dnsserver.recorded(nets.run_dir):
        dnsserver.stop(nets.run_dir, short)
    nets.flush_firewall()
    nets.close()


def cid() -> str:
    return secrets.token_hex(32)


def wait_port(netns: Path, ip: str, port: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until something listens on ip:port inside netns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = nsexec(netns, sys.executable, "-c", CONNECT_PROBE, ip, str(port), timeout=10)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {ip}:{port} in {netns.name}")


CONNECT_PROBE = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.close()
"""

HTTP_GET = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"GET /index.html HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
data = b""
for _ in range(1000):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode(errors="replace"))
"""


def http_get_in(netns: Path, host: str, port: int = 80) -> subprocess.CompletedProcess[str]:
    return nsexec(netns, sys.executable, "-c", HTTP_GET, host, str(port))


def http_get_host(ip: str, port: int) -> str:
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def query_in(netns: Path, server: str, name: str, port: int = 53) -> dns.Answer:
    """Send one A query from inside `netns` with our codec; parse the answer."""
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\n"
        "s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))\n"
        "sys.stdout.write(s.recvfrom(65535)[0].hex())\n"
    )
    q = dns.build_query(name, dns.QType.A, random.randint(1, 65535))
    r = nsexec(netns, sys.executable, "-c", code, server, str(port), q.hex())
    assert r.returncode == 0, r.stderr
    return dns.parse_answer(bytes.fromhex(r.stdout))


def ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def table_exists(nets: Networks) -> bool:
    return ("inet", nets.table) in firewall.list_tables()


class Dummy:
    """A dummy-like interface (an empty bridge) in the host namespace with one /32 address from 10.x:
    an "outside" address that never leaves the machine."""

    def __init__(self) -> None:
        self.name = "pqd" + secrets.token_hex(4)
        self.ip = random_subnet().replace(".0/24", ".7")
        # No dummy driver in this kernel: an empty bridge holds the address as well.
        subprocess.run(["ip", "link", "add", self.name, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{self.ip}/32", "dev", self.name], check=True)
        subprocess.run(["ip", "link", "set", self.name, "up"], check=True)

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.name], check=False)


class Listener:
    """A TCP server in the test process answering b"pong" to every connection."""

    def __init__(self, ip: str, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(b"pong")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


READ_PROBE = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
sys.stdout.write(s.recv(100).decode())
"""


def tcp_read_in(netns: Path, ip: str, port: int) -> subprocess.CompletedProcess[str]:
    """Connect from inside netns and print what the server sends first."""
    return nsexec(netns, sys.executable, "-c", READ_PROBE, ip, str(port))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def our_rules(nets: Networks) -> str:
    """portique's two tables for this root only (other tools' counters move on their own)."""
    out = []
    for family, name in (("ip", f"{nets.table}_nat"), ("inet", nets.table)):
        r = subprocess.run(["nft", "list", "table", family, name], capture_output=True, text=True)
        out.append(r.stdout)
    return "".join(out)


# Sends one hand-made UDP datagram out of eth0 to the bridge's MAC: what a container
# with CAP_NET_RAW (in Docker's default set) can do, whatever its routes say.
CRAFT_UDP = r"""
import socket, struct, sys
dst_mac, src_mac, src_ip, dst_ip, port = sys.argv[1:6]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF
payload = b"spoofed"
udp = struct.pack("!HHHH", 40000, int(port), 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                 socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
s.send(eth + ip + udp)
"""
