"""HTTP to registries over urllib3: scheme choice, TLS, retries, redirects.

- Loopback registries (localhost, 127.0.0.0/8, ::1) speak plain HTTP, as
  Docker treats them as insecure by default. Hosts in `insecure` (and every
  host when tls_verify is False) try HTTPS without verification first and fall
  back to plain HTTP, once per host. Others use verified HTTPS.
- Docker Hub (`docker.io`) is served by registry-1.docker.io.
- Idempotent requests (GET, HEAD) are retried with exponential backoff on
  connection errors, 429 and 5xx; redirects (to blob storage) are followed and
  drop the Authorization header when they leave the registry's host.
- One PoolManager per TLS mode; urllib3 pools are thread-safe, so parallel
  layer downloads share connections.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from typing import IO, Final

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError

from portique.image.registry.errors import RegistryUnreachable

DOCKER_HUB_API: Final = "registry-1.docker.io"
IDEMPOTENT: Final = frozenset({"GET", "HEAD"})
RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT: Final = urllib3.Timeout(connect=15.0, read=120.0)
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
        total=3, connect=3, read=0, status=0, backoff_factor=0.2, redirect=0, raise_on_status=False
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
    ) -> None:
        self.insecure = frozenset(insecure)
        self.tls_verify = tls_verify
        self.user_agent = user_agent
        self._timeout = timeout
        self._verified = urllib3.PoolManager(num_pools=16, maxsize=maxsize, block=False)
        self._unverified: urllib3.PoolManager | None = None
        self._maxsize = maxsize
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        if url.startswith("https://") and self._unverified is not None:
            host = url[8:].split("/", 1)[0]
            if self._is_insecure(host):
                return self._unverified
        return self._verified

    def _is_insecure(self, domain: str) -> bool:
        return not self.tls_verify or domain in self.insecure or is_loopback(domain)

    def base_url(self, domain: str) -> str:
        """`https://host` or `http://host` for a registry domain (probed once if insecure)."""
        with self._lock:
            cached = self._bases.get(domain)
        if cached is not None:
            return cached
        host = api_host(domain)
        if is_loopback(host):
            base = f"http://{host}"
        elif self._is_insecure(domain):
            base = self._probe(host)
        else:
            base = f"https://{host}"
        with self._lock:
            self._bases[domain] = base
        return base

    def _probe(self, host: str) -> str:
        """HTTPS without verification if the host speaks TLS, else plain HTTP."""
        if self._unverified is None:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._unverified = urllib3.PoolManager(
                num_pools=16, maxsize=self._maxsize, block=False, cert_reqs="CERT_NONE"
            )
        try:
            resp = self._unverified.request(
                "GET",
                f"https://{host}/v2/",
                timeout=urllib3.Timeout(connect=5.0, read=10.0),
                retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
                headers={"User-Agent": self.user_agent},
            )
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
        preload: bool = True,
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


def _short(exc: object) -> str:
    text = str(exc)
    # urllib3 wraps the cause in "<urllib3.connection...>: Failed to establish ...".
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return text.strip("()'\" ")[:300]


__all__ = ["DOCKER_HUB_API", "Transport", "api_host", "is_loopback"]
