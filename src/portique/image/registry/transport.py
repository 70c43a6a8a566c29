"""HTTP to registries over urllib3: scheme choice, TLS, retries, redirects.

- Loopback registries (localhost, 127.0.0.0/8, ::1) are insecure by default,
  as in Docker; so are hosts in `insecure`, and every host when tls_verify is
  False. For those, HTTPS without verification is tried first and plain HTTP
  after, once per host. Others use verified HTTPS, trusting the system CAs
  plus `/etc/docker/certs.d/<host>/ca.crt` (or /etc/containers/certs.d).
- Docker Hub (`docker.io`) is served by registry-1.docker.io.
- Idempotent requests (GET, HEAD) are retried with exponential backoff on
  connection errors, 429 and 5xx; redirects (to blob storage) are followed and
  drop the Authorization header when they leave the registry's host.
- One PoolManager per TLS mode; urllib3 pools are thread-safe, so parallel
  layer downloads share connections.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Final

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError

from portique.image.registry.errors import RegistryUnreachable

DOCKER_HUB_API: Final = "registry-1.docker.io"
IDEMPOTENT: Final = frozenset({"GET", "HEAD"})
RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT: Final = urllib3.Timeout(connect=15.0, read=120.0)
CERTS_DIRS: Final = (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))
Body = bytes | IO[bytes] | None


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


def _retry(method: str) -> urllib3.Retry:
    if method in IDEMPOTENT:
        return urllib3.Retry(
            total=5,
            connect=4,
            read=3,
            status=3,
            # TLS verification and other protocol failures do not heal by retrying.
            other=0,
            backoff_factor=0.2,
            backoff_max=5.0,
            status_forcelist=RETRY_STATUS,
            allowed_methods=IDEMPOTENT,
            redirect=5,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
    # Not idempotent (uploads): retry only a connection that never got our request.
    return urllib3.Retry(
        total=3,
        connect=3,
        read=0,
        status=0,
        other=0,
        backoff_factor=0.2,
        redirect=0,
        raise_on_status=False,
    )


class Transport:
    def __init__(
        self,
        *,
        insecure: set[str] | frozenset[str] = frozenset(),
        tls_verify: bool = True,
        user_agent: str = "portique",
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        maxsize: int = 8,
        loopback_insecure: bool = True,
        certs_dirs: tuple[Path, ...] = CERTS_DIRS,
    ) -> None:
        self.insecure = frozenset(insecure)
        self.tls_verify = tls_verify
        self.loopback_insecure = loopback_insecure
        self.certs_dirs = certs_dirs
        self.user_agent = user_agent
        self._timeout = timeout
        self._maxsize = maxsize
        self._verified = urllib3.PoolManager(num_pools=16, maxsize=maxsize, block=False)
        self._unverified: urllib3.PoolManager | None = None
        self._per_host_ca: dict[str, urllib3.PoolManager] = {}
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()

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

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        if not url.startswith("https://"):
            return self._verified
        host = url[8:].split("/", 1)[0].rsplit("@", 1)[-1]
        with self._lock:
            if self._unverified is not None and self.is_insecure(host):
                return self._unverified
            pool = self._per_host_ca.get(host)
            if pool is not None:
                return pool
            ca = self._ca_file(host)
            if ca is None:
                return self._verified
            pool = urllib3.PoolManager(
                num_pools=4, maxsize=self._maxsize, block=False, ca_certs=str(ca)
            )
            self._per_host_ca[host] = pool
            return pool

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
        with self._lock:
            if self._unverified is None:
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
                self._unverified = urllib3.PoolManager(
                    num_pools=16,
                    maxsize=self._maxsize,
                    block=False,
                    cert_reqs="CERT_NONE",
                    ssl_context=_unverified_context(),
                )
            pool = self._unverified
        # A plain-HTTP server answers a TLS hello at once with an error; a short
        # read timeout bounds servers that wait for a newline instead.
        read = 2.0 if is_loopback(host) else 10.0
        try:
            resp = pool.request(
                "GET",
                f"https://{host}/v2/",
                timeout=urllib3.Timeout(connect=5.0, read=read),
                retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
                headers={"User-Agent": self.user_agent},
                preload_content=False,
            )
            resp.drain_conn()
            resp.release_conn()
            return f"https://{host}"
        except (SSLError, Urllib3Error):
            return f"http://{host}"

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        preload: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """One HTTP exchange (with retries); RegistryUnreachable when no answer came."""
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        try:
            return self._pool_for(url).request(
                method,
                url,
                headers=all_headers,
                body=body,
                preload_content=preload,
                decode_content=True,
                retries=_retry(method),
                timeout=self._timeout,
                redirect=method in IDEMPOTENT,
            )
        except Urllib3Error as exc:
            host = url.split("/", 3)[2] if "://" in url else url
            reason = getattr(exc, "reason", None) or exc
            raise RegistryUnreachable(f"cannot reach registry {host}: {_short(reason)}") from None

    def clear(self) -> None:
        self._verified.clear()
        if self._unverified is not None:
            self._unverified.clear()


def _unverified_context() -> ssl.SSLContext:
    """A TLS context that checks nothing, made once for the unverified pool.

    Given no context, urllib3 makes one per connection and loads the system's
    CA bundle into it (~30 ms) even though nothing will be verified against it.
    """
    from urllib3.util.ssl_ import create_urllib3_context

    return create_urllib3_context(cert_reqs=ssl.CERT_NONE)


def _short(exc: object) -> str:
    text = str(exc)
    # urllib3 wraps the cause in "<urllib3.connection...>: Failed to establish ...".
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return text.strip("()'\" ")[:300]


__all__ = ["DOCKER_HUB_API", "Transport", "api_host", "is_loopback"]
