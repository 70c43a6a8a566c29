"""HTTP to registries over the standard library's http.client: scheme choice,
TLS, keep-alive connections, retries, redirects.

- Loopback registries (localhost, 127.0.0.0/8, ::1) are insecure by default,
  as in Docker; so are hosts in `insecure`, and every host when tls_verify is
  False. For those, HTTPS without verification is tried first and plain HTTP
  after, once per host. Others use verified HTTPS, trusting the system CAs,
  or only `/etc/docker/certs.d/<host>/ca.crt` (or /etc/containers/certs.d)
  where that file exists.
- Docker Hub (`docker.io`) is served by registry-1.docker.io.
- Idempotent requests (GET, HEAD) are retried with exponential backoff on
  connection errors, 429 and 5xx; redirects (to blob storage) are followed and
  drop the Authorization header when they leave the registry's host. Others
  are retried only when they could not connect.
- Connections are kept alive and reused, per scheme, host and TLS settings;
  the transport is thread-safe, so parallel layer downloads share them. A
  connection goes back only once its response was read to the end.
- Bodies are what the server sent: no content coding is asked for (http.client
  says `Accept-Encoding: identity`) and none is undone, and a body that ends
  before its Content-Length is an error, never a short success.

(No third-party HTTP library: urllib3 cost a `pull` ~30 ms of imports.)
"""

from __future__ import annotations

import http.client
import ipaddress
import select
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from portique.image.registry.errors import RegistryUnreachable

DOCKER_HUB_API: Final = "registry-1.docker.io"
IDEMPOTENT: Final = frozenset({"GET", "HEAD"})
RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUS: Final = frozenset({413, 429, 503})
REDIRECT_STATUS: Final = frozenset({301, 302, 303, 307, 308})
CONNECT_TIMEOUT: Final = 15.0
READ_TIMEOUT: Final = 120.0
BACKOFF: Final = 0.2
BACKOFF_MAX: Final = 5.0
RETRY_AFTER_MAX: Final = 60.0  # a server's Retry-After is obeyed up to this
CERTS_DIRS: Final = (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))
_BLOCK: Final = 1 << 16  # how http.client reads a file body it sends
_DRAIN: Final = 1 << 16  # unread body worth reading to keep a connection
Body = bytes | IO[bytes] | None


class TransportError(Exception):
    """The connection failed or broke while a body was read."""


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == "docker.io" else domain


@dataclass(slots=True)
class _Budget:
    """What may still be retried (urllib3's Retry, as this transport used it)."""

    total: int
    connect: int
    read: int
    status: int
    redirect: int
    errors: int = 0  # consecutive failures, for the backoff

    @classmethod
    def for_method(cls, method: str) -> _Budget:
        if method in IDEMPOTENT:
            return cls(total=5, connect=4, read=3, status=3, redirect=5)
        # Not idempotent (uploads): retry only a connection that never got our request.
        return cls(total=3, connect=3, read=0, status=0, redirect=0)

    def take(self, kind: str) -> bool:
        """Spend one retry of `kind`; False when none is left."""
        left = getattr(self, kind) - 1
        setattr(self, kind, left)
        self.total -= 1
        return left >= 0 and self.total >= 0

    def backoff(self) -> None:
        self.errors += 1
        if self.errors > 1:
            time.sleep(min(BACKOFF * 2 ** (self.errors - 1), BACKOFF_MAX))


class Response:
    """A response whose body is read by `stream` or `read`; `release_conn` hands
    the connection back when the body ended, `close` drops it."""

    def __init__(self, transport: Transport, key: _Key, conn: http.client.HTTPConnection) -> None:
        self._transport = transport
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self._raw = conn.getresponse()
        self.status = self._raw.status
        self.headers = self._raw.headers

    def read(self, amt: int) -> bytes:
        """Up to `amt` bytes: fewer only at the end of the body."""
        try:
            data = self._raw.read(amt)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(_reason(exc)) from None
        if not data and amt and self._raw.length:
            # http.client returns b"" when the peer closed short of Content-Length.
            missing = self._raw.length
            self.close()
            raise TransportError(f"connection closed with {missing} bytes of the body unread")
        return data

    def stream(self, amt: int) -> Iterator[bytes]:
        """The body in pieces of at most `amt` bytes."""
        while True:
            data = self.read(amt)
            if not data:
                return
            yield data

    def release_conn(self) -> None:
        """Give the connection back if its body was read to the end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        raw = self._raw
        if not raw.isclosed() and raw.length == 0 and not raw.chunked:
            raw.read()  # an empty body (HEAD, 204): http.client closes it on this read
        if raw.isclosed() and not raw.will_close and conn.sock is not None:
            self._transport._put(self._key, conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._raw.close()
        if conn is not None:
            conn.close()

    def _drain(self) -> None:
        """Read a short unread body so that the connection can be reused."""
        try:
            if self._raw.length is not None and self._raw.length <= _DRAIN:
                self.read(self._raw.length)
        except TransportError:
            return
        self.release_conn()


# (scheme, host[:port], TLS context or None): the connections one pool shares.
_Key = tuple[str, str, ssl.SSLContext | None]


class Transport:
    def __init__(
        self,
        *,
        insecure: set[str] | frozenset[str] = frozenset(),
        tls_verify: bool = True,
        user_agent: str = "portique",
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        maxsize: int = 8,
        loopback_insecure: bool = True,
        certs_dirs: tuple[Path, ...] = CERTS_DIRS,
    ) -> None:
        self.insecure = frozenset(insecure)
        self.tls_verify = tls_verify
        self.loopback_insecure = loopback_insecure
        self.certs_dirs = certs_dirs
        self.user_agent = user_agent
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._maxsize = maxsize
        self._verified: ssl.SSLContext | None = None  # the system CAs, loaded once
        self._unverified: ssl.SSLContext | None = None
        self._per_host_ca: dict[str, ssl.SSLContext] = {}
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()
        # A transport dropped without clear() closes its idle connections too.
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    def is_insecure(self, host: str) -> bool:
        """May `host` (as in a URL: host[:port]) be used without TLS verification?"""
        if not self.tls_verify or host in self.insecure:
            return True
        return self.loopback_insecure and is_loopback(host)

    def _ca_file(self, host: str) -> Path | None:
        # Docker's per-registry trust: /etc/docker/certs.d/<host[:port]>/ca.crt.
        for d in self.certs_dirs:
            candidate = d / host / "ca.crt"
            if candidate.is_file():
                return candidate
        return None

    def _context(self, host: str) -> ssl.SSLContext:
        """The TLS context for `host`: unverified once it was probed as insecure,
        else its certs.d CA alone, else the system's CAs."""
        with self._lock:
            if self._unverified is not None and self.is_insecure(host):
                return self._unverified
            ctx = self._per_host_ca.get(host)
            if ctx is not None:
                return ctx
            ca = self._ca_file(host)
            if ca is not None:
                try:
                    ctx = _verifying_context(str(ca))
                except (OSError, ValueError) as exc:  # unreadable, or not PEM
                    raise RegistryUnreachable(
                        f"cannot reach registry {host}: cannot use {ca}: {_reason(exc)}"
                    ) from None
                self._per_host_ca[host] = ctx
                return ctx
            if self._verified is None:
                self._verified = _verifying_context(None)
            return self._verified

    def _unverified_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._unverified is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._unverified = ctx
            return self._unverified

    def base_url(self, domain: str) -> str:
        """`https://host` or `http://host` for a registry domain (probed once if insecure).

        As Docker does for insecure registries (loopback ones included), HTTPS is
        tried first, without verifying the certificate, and plain HTTP after.
        """
        with self._lock:
            cached = self._bases.get(domain)
        if cached is not None:
            return cached
        host = api_host(domain)
        base = self._probe(host) if self.is_insecure(host) else f"https://{host}"
        with self._lock:
            self._bases[domain] = base
        return base

    def _probe(self, host: str) -> str:
        """HTTPS without verification if the host speaks TLS, else plain HTTP."""
        key: _Key = ("https", host, self._unverified_context())
        # A plain-HTTP server answers a TLS hello at once with an error; a short
        # read timeout bounds servers that wait for a newline instead.
        read = 2.0 if is_loopback(host) else 10.0
        try:
            conn = self._connect(key, connect_timeout=5.0, read_timeout=read)
            conn.request("GET", "/v2/", headers={"User-Agent": self.user_agent})
            resp = Response(self, key, conn)
        except (OSError, http.client.HTTPException):
            return f"http://{host}"
        # It speaks TLS. Its connection serves what follows once its short body
        # is read (with the probe's timeout) and it has the usual read timeout.
        length = resp._raw.length
        try:
            if length is None or length > _DRAIN:
                raise TransportError("a long answer to the probe")
            resp.read(length)
            if conn.sock is not None:
                conn.sock.settimeout(self._read_timeout)
        except (TransportError, OSError):
            resp.close()
        else:
            resp.release_conn()
        return f"https://{host}"

    # ---- connections ------------------------------------------------------------

    def _connect(
        self, key: _Key, *, connect_timeout: float | None = None, read_timeout: float | None = None
    ) -> http.client.HTTPConnection:
        scheme, netloc, ctx = key
        timeout = self._connect_timeout if connect_timeout is None else connect_timeout
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                netloc, timeout=timeout, context=ctx, blocksize=_BLOCK
            )
        else:
            conn = http.client.HTTPConnection(netloc, timeout=timeout, blocksize=_BLOCK)
        try:
            conn.connect()
            assert conn.sock is not None
            # As urllib3 did: a request's last small segment goes out at once,
            # not after the peer's delayed ACK (Nagle).
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock.settimeout(self._read_timeout if read_timeout is None else read_timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    def _get(self, key: _Key) -> http.client.HTTPConnection | None:
        """An idle connection of `key` that the server has not closed, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if _usable(conn):
                return conn
            conn.close()

    def _put(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._maxsize:
                idle.append(conn)
                return
        conn.close()

    def _key(self, url: str) -> tuple[_Key, str]:
        """(pool key, request target) of an absolute http(s) URL."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryUnreachable(f"cannot reach registry: unsupported URL {url[:200]!r}")
        netloc = parts.netloc.rsplit("@", 1)[-1]  # never credentials from a URL
        ctx = self._context(netloc) if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return (parts.scheme, netloc, ctx), target

    # ---- requests ---------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> Response:
        """One HTTP exchange (with retries and, for GET and HEAD, redirects);
        RegistryUnreachable when no answer came."""
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        budget = _Budget.for_method(method)
        while True:
            resp = self._attempt(method, url, all_headers, body, budget)
            if resp.status in REDIRECT_STATUS and method in IDEMPOTENT:
                location = resp.headers.get("Location")
                if location:
                    resp._drain()
                    if not budget.take("redirect"):
                        raise RegistryUnreachable(
                            f"cannot reach registry {_host(url)}: too many redirects"
                        )
                    new_url = urllib.parse.urljoin(url, location)
                    if _host(new_url) != _host(url):
                        # Blob storage elsewhere gets no registry credentials.
                        all_headers = {
                            k: v for k, v in all_headers.items() if k.lower() != "authorization"
                        }
                    url = new_url
                    continue
            if resp.status in RETRY_STATUS and method in IDEMPOTENT and budget.take("status"):
                wait = _retry_after(resp)
                resp._drain()
                if wait is not None:
                    time.sleep(wait)
                else:
                    budget.backoff()
                continue
            return resp

    def _attempt(
        self, method: str, url: str, headers: dict[str, str], body: Body, budget: _Budget
    ) -> Response:
        """One exchange, retried on failures to connect or (idempotent) to get an answer."""
        key, target = self._key(url)
        while True:
            # A body read from a file can be sent once: on a fresh connection, so
            # that an idle one the server dropped cannot waste it.
            conn = self._get(key) if body is None or isinstance(body, bytes) else None
            try:
                if conn is None:
                    conn = self._connect(key)
            except ssl.SSLError as exc:  # TLS failures do not heal by retrying
                raise _unreachable(url, exc) from None
            except OSError as exc:
                if not budget.take("connect"):
                    raise _unreachable(url, exc) from None
                budget.backoff()
                continue
            try:
                conn.request(method, target, body=body, headers=headers)
                return Response(self, key, conn)
            except ssl.SSLError as exc:
                conn.close()
                raise _unreachable(url, exc) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if method not in IDEMPOTENT or not budget.take("read"):
                    raise _unreachable(url, exc) from None
                budget.backoff()

    def clear(self) -> None:
        """Close every idle connection."""
        _close_idle(self._idle, self._lock)


def _close_idle(idle: dict[_Key, list[http.client.HTTPConnection]], lock: threading.Lock) -> None:
    with lock:
        conns = [c for pool in idle.values() for c in pool]
        idle.clear()
    for conn in conns:
        conn.close()


def _verifying_context(cafile: str | None) -> ssl.SSLContext:
    """Verify certificate and host name against `cafile` alone, or the system's CAs."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _usable(conn: http.client.HTTPConnection) -> bool:
    """Is an idle keep-alive connection still open? (Readable while idle: the
    server closed it, or sent what nobody asked for.)"""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _retry_after(resp: Response) -> float | None:
    """The seconds a 413/429/503's Retry-After asks for (bounded), if it gives them."""
    if resp.status not in RETRY_AFTER_STATUS:
        return None
    value = (resp.headers.get("Retry-After") or "").strip()
    if not value.isdigit():
        return None
    return min(float(value), RETRY_AFTER_MAX)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _unreachable(url: str, exc: BaseException) -> RegistryUnreachable:
    return RegistryUnreachable(f"cannot reach registry {_host(url)}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip("()'\" ")[:300]


__all__ = ["DOCKER_HUB_API", "Response", "Transport", "TransportError", "api_host", "is_loopback"]
