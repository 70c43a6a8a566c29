"""The embedded DNS server of a user-defined network, and its process lifecycle.

One small process per user-defined network that has containers, listening on
the network's gateway address, port 53, UDP and TCP, in the host namespace
(so it reaches the host's resolvers, loopback ones included). Containers get
`nameserver <gateway>` in their resolv.conf. It answers:

- A for a container's name, its aliases and its 12-hex short ID, from the
  network's active endpoints in portique.db (re-read when `PRAGMA data_version`
  says another connection committed);
- an empty NOERROR for other types of a known name (so AAAA does not leak out);
- anything else by relaying the query verbatim to the host's resolvers (taken
  from /etc/resolv.conf by the caller), SERVFAIL when none answers.

Lifecycle: started on demand by Networks.connect (under a lock file, so two
engines never start two), stopped when the network's last endpoint goes or
the network is removed, and it stops itself when its network disappears from
the database (a crashed engine leaves no resolver serving forever). Its pid
file records the process start time, so stop() never signals a recycled pid.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from portique.network import dns

IDLE_CHECK_SECONDS = 5.0
UPSTREAM_TIMEOUT = 2.0
MAX_TCP_CLIENTS = 32
MAX_MESSAGE = 65535
MAX_PENDING = 64


# --- the server ---------------------------------------------------------------------------


class Names:
    """name -> addresses for one network, reloaded when the database changes."""

    def __init__(self, db_path: Path, network_id: str) -> None:
        self._conn = sqlite3.connect(
            f"file:{db_path}?mode=ro", uri=True, timeout=5.0, check_same_thread=False
        )  # shared by the UDP, TCP and relay threads, under self._lock
        self._network_id = network_id
        self._version = -1
        self._names: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def subnet(self) -> ipaddress.IPv4Network | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT subnet FROM networks WHERE id = ?", (self._network_id,)
            ).fetchone()
        return ipaddress.IPv4Network(row[0]) if row else None

    def network_exists(self) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM networks WHERE id = ?", (self._network_id,)
            ).fetchone()
        return row is not None

    def lookup(self, name: str) -> list[str] | None:
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                self._names = self._load()
                self._version = version
            return self._names.get(name)

    def _load(self) -> dict[str, list[str]]:
        names: dict[str, list[str]] = {}
        rows = self._conn.execute(
            "SELECT container_id, container_name, aliases, ip FROM endpoints"
            " WHERE network_id = ? AND state = 'active' ORDER BY created",
            (self._network_id,),
        ).fetchall()
        for cid, cname, aliases, ip in rows:
            for n in {cname, cid[:12], *json.loads(aliases)}:
                if n:
                    names.setdefault(n.lower().rstrip("."), []).append(ip)
        return names


class Resolver:
    def __init__(self, names: Names, upstreams: Sequence[tuple[str, int]]) -> None:
        self.names = names
        self.upstreams = list(upstreams)

    def answer_local(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The reply if the question is ours; None to relay it upstream."""
        try:
            q = dns.parse_question(data)
        except dns.DNSFormatError:
            return dns.build_error(data, dns.RCode.FORMERR)
        if q.is_response:
            return b""  # never answer answers
        if q.opcode != 0:
            return dns.build_response(q, [], dns.RCode.NOTIMP)
        addrs = self.names.lookup(q.name)
        if addrs is None:
            return None
        if q.qtype in (dns.QType.A, dns.QType.ANY) and q.qclass == 1:
            return dns.build_response(q, addrs, max_size=None if tcp else dns.UDP_MAX)
        return dns.build_response(q, [])

    def relay(self, data: bytes, tcp: bool) -> bytes:
        for host, port in self.upstreams:
            try:
                if tcp:
                    with socket.create_connection((host, port), timeout=UPSTREAM_TIMEOUT) as s:
                        s.sendall(struct.pack("!H", len(data)) + data)
                        return _read_tcp_message(s) or b""
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(UPSTREAM_TIMEOUT)
                    s.sendto(data, (host, port))
                    reply, _ = s.recvfrom(MAX_MESSAGE)
                    if reply[:2] == data[:2]:
                        return reply
            except OSError:
                continue
        try:
            return dns.build_response(dns.parse_question(data), [], dns.RCode.SERVFAIL)
        except dns.DNSFormatError:
            return dns.build_error(data, dns.RCode.SERVFAIL) or b""

    def resolve(self, data: bytes, tcp: bool) -> bytes:
        local = self.answer_local(data, tcp)
        return local if local is not None else self.relay(data, tcp)


def _read_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_tcp_message(s: socket.socket) -> bytes | None:
    head = _read_exact(s, 2)
    if head is None:
        return None
    return _read_exact(s, struct.unpack("!H", head)[0])


def _serve_tcp_client(conn: socket.socket, resolver: Resolver, slots: threading.Semaphore) -> None:
    try:
        with conn:
            conn.settimeout(5.0)
            for _ in range(64):  # bounded queries per connection
                msg = _read_tcp_message(conn)
                if msg is None:
                    return
                reply = resolver.resolve(msg, tcp=True)
                if not reply:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
    except OSError:
        pass
    finally:
        slots.release()


def _tcp_loop(sock: socket.socket, resolver: Resolver, allowed: ipaddress.IPv4Network) -> None:
    slots = threading.Semaphore(MAX_TCP_CLIENTS)
    while True:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        if ipaddress.IPv4Address(peer[0]) not in allowed or not slots.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(
            target=_serve_tcp_client, args=(conn, resolver, slots), daemon=True
        ).start()


def _bind(kind: int, address: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # IP_FREEBIND: bind the gateway address even while the bridge is still coming up.
    s.setsockopt(socket.IPPROTO_IP, 15, 1)
    s.bind((address, port))
    return s


def serve(
    db_path: Path,
    network_id: str,
    address: str,
    port: int,
    upstreams: Sequence[tuple[str, int]],
    ready_fd: int | None = None,
) -> int:
    names = Names(db_path, network_id)
    resolver = Resolver(names, upstreams)
    # Only the network's own containers may ask: the gateway address is reachable
    # from every container on the host, and names of one network are not for others.
    allowed = names.subnet()
    if allowed is None:
        return 0  # the network is gone already
    udp = _bind(socket.SOCK_DGRAM, address, port)
    tcp = _bind(socket.SOCK_STREAM, address, port)
    tcp.listen(64)
    threading.Thread(target=_tcp_loop, args=(tcp, resolver, allowed), daemon=True).start()
    if ready_fd is not None:
        os.write(ready_fd, f"ok {os.getpid()}\n".encode())
        os.close(ready_fd)
    pool = ThreadPoolExecutor(max_workers=8)
    # At most MAX_PENDING relays queued: a flood of foreign names is dropped (the
    # clients retry), not buffered without bound.
    pending = threading.BoundedSemaphore(MAX_PENDING)
    udp.settimeout(IDLE_CHECK_SECONDS)

    def reply(data: bytes, peer: tuple[str, int]) -> None:
        # Relayed verbatim: the upstream already sized it for the client's EDNS buffer.
        out = resolver.resolve(data, tcp=False)
        if out:
            with contextlib.suppress(OSError):
                udp.sendto(out, peer)

    while True:
        try:
            data, peer = udp.recvfrom(MAX_MESSAGE)
        except TimeoutError:
            # Gone network, or gone database (a deleted engine root): nothing to serve.
            if not db_path.exists() or not names.network_exists():
                return 0
            continue
        if ipaddress.IPv4Address(peer[0]) not in allowed:
            refused = dns.build_error(data, dns.RCode.REFUSED)
            if refused:
                with contextlib.suppress(OSError):
                    udp.sendto(refused, peer)
            continue
        try:
            local = resolver.answer_local(data)
        except Exception as exc:  # a bad moment of the database must not kill the server
            sys.stderr.write(f"portique-dns: {exc!r}\n")
            local = dns.build_error(data, dns.RCode.SERVFAIL)
        if local is not None:
            if local:
                with contextlib.suppress(OSError):
                    udp.sendto(local, peer)
            continue
        if not pending.acquire(blocking=False):
            continue
        fut = pool.submit(reply, data, peer)
        fut.add_done_callback(_log_failure)
        fut.add_done_callback(lambda _f: pending.release())


def _log_failure(fut: Future[None]) -> None:
    exc = fut.exception()
    if exc is not None:
        sys.stderr.write(f"portique-dns: {exc!r}\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="portique-dns")
    p.add_argument("--db", required=True, type=Path)
    p.add_argument("--network", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--upstream", action="append", default=[])
    p.add_argument("--ready-fd", type=int)
    a = p.parse_args(argv)
    ups = []
    for u in a.upstream:
        host, _, port = u.rpartition(":")
        ups.append((host, int(port)))
    # Daemonize: the engine's direct child exits at once (it reaps it, no zombie),
    # the server lives on in a new session, reparented to init or a subreaper.
    # Forking is safe here: no thread has started yet.
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return serve(a.db, a.network, a.listen, a.port, ups, a.ready_fd)


# --- process lifecycle --------------------------------------------------------------------


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[tuple[str, int]]:
    out = []
    try:
        text = resolv_conf.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
            out.append((parts[1], 53))
    return out


def _start_time(pid: int) -> int | None:
    """Start time of a live process (None if gone or a zombie)."""
    from portique.linux.proc import read_stat

    try:
        stat = read_stat(pid)
    except (OSError, ValueError):
        return None
    return stat.start_time if stat is not None and stat.is_alive else None


def _pidfile(run_dir: Path, network_id: str) -> Path:
    return run_dir / f"dns-{network_id[:12]}.json"


@contextlib.contextmanager
def _locked(run_dir: Path, network_id: str) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(
        run_dir / f"dns-{network_id[:12]}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(info: dict[str, object]) -> bool:
    pid = info.get("pid")
    return isinstance(pid, int) and _start_time(pid) == info.get("start_time")


def _read(run_dir: Path, network_id: str) -> dict[str, object] | None:
    try:
        info = json.loads(_pidfile(run_dir, network_id).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def ensure_running(
    run_dir: Path,
    db_path: Path,
    network_id: str,
    address: str,
    upstreams: Sequence[tuple[str, int]],
    port: int = 53,
) -> int:
    """Start the network's resolver unless it runs; return its pid."""
    from portique.fileio import atomic_write_json

    with _locked(run_dir, network_id):
        info = _read(run_dir, network_id)
        if info is not None and _alive(info) and info.get("address") == address:
            return int(str(info["pid"]))
        if info is not None and _alive(info):
            _kill(info)
        r, w = os.pipe()
        log = os.open(run_dir / f"dns-{network_id[:12]}.log",
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)  # fmt: skip
        cmd = [sys.executable, "-m", "portique.network.dnsserver", "--db", str(db_path),
               "--network", network_id, "--listen", address, "--port", str(port),
               "--ready-fd", str(w)]  # fmt: skip
        for host, uport in upstreams:
            cmd += ["--upstream", f"{host}:{uport}"]
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(w,),
                env={**os.environ, "PYTHONPATH": _src_path()},
            )
        finally:
            os.close(w)
            os.close(log)
        try:
            proc.wait(timeout=15.0)  # the launcher exits right after forking the server
            pid = _wait_ready(r, 15.0)
        finally:
            os.close(r)
        if pid is None:
            raise OSError(
                f"embedded dns server for network {network_id[:12]} did not start"
                f" (see {run_dir}/dns-{network_id[:12]}.log)"
            )
        start = _start_time(pid)
        atomic_write_json(
            _pidfile(run_dir, network_id),
            {"pid": pid, "start_time": start, "address": address, "network": network_id},
        )
        return pid


def _src_path() -> str:
    import portique

    return str(Path(portique.__file__).resolve().parent.parent)


def _wait_ready(fd: int, timeout: float) -> int | None:
    """The server's pid once it says "ok <pid>"; None if it died or timed out."""
    import select

    deadline = time.monotonic() + timeout
    buf = b""
    while (left := deadline - time.monotonic()) > 0 and len(buf) < 64:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break  # every writer closed: the server died before binding
        buf += chunk
        if buf.endswith(b"\n"):
            word, _, pid = buf.decode(errors="replace").strip().partition(" ")
            return int(pid) if word == "ok" and pid.isdigit() else None
    return None


def _kill(info: dict[str, object]) -> None:
    pid = info["pid"]
    assert isinstance(pid, int)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):  # up to 2 s, then SIGKILL
        if not _alive(info):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop(run_dir: Path, network_id: str) -> bool:
    """Stop the network's resolver if it runs; True if one was stopped."""
    with _locked(run_dir, network_id):
        info = _read(run_dir, network_id)
        stopped = False
        if info is not None and _alive(info):
            _kill(info)
            stopped = True
        _pidfile(run_dir, network_id).unlink(missing_ok=True)
        (run_dir / f"dns-{network_id[:12]}.log").unlink(missing_ok=True)
    # The lock file stays: unlinking it would let a waiter lock a dead inode while
    # a newcomer locks a fresh one. Networks.remove() deletes it with the network.
    return stopped


def running(run_dir: Path) -> dict[str, int]:
    """network id -> pid of every live resolver recorded under run_dir."""
    out = {}
    for f in sorted(run_dir.glob("dns-*.json")) if run_dir.is_dir() else []:
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and _alive(info):
            out[str(info["network"])] = int(info["pid"])
    return out


def recorded(run_dir: Path) -> list[str]:
    """Network ids (12 hex) that have a pid file, live or not."""
    if not run_dir.is_dir():
        return []
    return [f.name[4:-5] for f in sorted(run_dir.glob("dns-*.json"))]


if __name__ == "__main__":
    raise SystemExit(main())
