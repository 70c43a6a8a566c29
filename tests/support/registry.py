"""A real registry for tests: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1.

Usage (any helper may import this directly; it needs no portique code):

    from support.registry import start_registry, TEST_USER, TEST_PASSWORD

    reg = start_registry(tmp_path, mode="plain")   # or "basic" (htpasswd) or "token";
                                                   # tls=True: HTTPS, self-signed (reg.ca_cert)
    try:
        reg.host          # "127.0.0.1:PORT" (use it in references: f"{reg.host}/busybox")
        reg.url           # "http://127.0.0.1:PORT"
        reg.request("GET", "/v2/busybox/tags/list")   # raw HTTP, authenticated for you
        reg.blob_path(digest)   # the registry's storage file of a blob (to tamper with it)
        reg.requests()    # [(method, path, status), ...] parsed from the registry's log
        reg.token_issuer  # mode "token": the in-process issuer (tokens_issued, requests)
    finally:
        reg.stop()

or as a context manager: `with start_registry(tmp_path, mode="token") as reg: ...`.

Modes:
- "plain": anonymous read/write.
- "basic": htpasswd (bcrypt, as distribution requires) with TEST_USER/TEST_PASSWORD.
- "token": Docker's token flow. A small issuer (http.server on 127.0.0.1, its own port)
  hands out RS256 JWTs whose header carries the signing certificate (x5c); the registry
  trusts that self-signed certificate through `rootcertbundle`. Anonymous clients get
  pull-only tokens when `anonymous_pull=True` (as on Docker Hub), nothing otherwise.

The registry config is written as JSON (YAML is a superset of JSON), storage lives in
a fresh directory under the given tmp dir, the process is stopped by its PID.
Pushing test images with raw HTTP: see support.oci_build.push_image.
RegistryProxy(reg.url) is a misbehaving front (errors, redirects, cut bodies, throttling).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

REGISTRY_BINARY = "/usr/bin/docker-registry"
TEST_USER = "testuser"
TEST_PASSWORD = "testpassword"
TOKEN_SERVICE = "portique-test-registry"
TOKEN_ISSUER_NAME = "portique-test-issuer"

Mode = Literal["plain", "basic", "token"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- token issuer ---------------------------------------------------------------------


def _make_signing_cert(tmp: Path) -> tuple[Any, bytes, Path]:
    """A self-signed RSA certificate: (private key, DER cert, PEM bundle path)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = tmp / "token-root.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), bundle


def _make_tls_cert(tmp: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost: (cert PEM, key PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portique-test-registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class TokenRequest:
    account: str | None
    scopes: list[str]
    status: int


@dataclass
class TokenIssuer:
    """Docker's token server, reduced to what a registry and a client need."""

    key: Any
    cert_der: bytes
    users: Mapping[str, str]
    anonymous_pull: bool = True
    service: str = TOKEN_SERVICE
    requests: list[TokenRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    @property
    def tokens_issued(self) -> int:
        return sum(1 for r in self.requests if r.status == 200)

    def issue(self, account: str | None, scopes: list[str]) -> str:
        """A signed JWT granting `scopes` ("repository:NAME:pull,push") to `account`."""
        import jwt

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if account is None:
                wanted = [a for a in wanted if a == "pull"] if self.anonymous_pull else []
            if kind and name:
                access.append({"type": kind, "name": name, "actions": wanted})
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER_NAME,
            "sub": account or "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        headers = {"x5c": [base64.b64encode(self.cert_der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        scopes = [s for v in query.get("scope", []) for s in v.split(" ")]
        account: str | None = None
        status = 200
        auth = handler.headers.get("Authorization", "")
        if url.path != "/token":
            status = 404
        elif query.get("service", [""])[0] != self.service:
            status = 400
        elif auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            if self.users.get(user) != password or not user:
                status = 401
            else:
                account = user
        with self._lock:
            self.requests.append(TokenRequest(account, scopes, status))
        if status != 200:
            body = json.dumps({"details": "unauthorized" if status == 401 else "bad request"})
            handler.send_response(status)
        else:
            token = self.issue(account, scopes)
            body = json.dumps(
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": 300,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            handler.send_response(200)
        data = body.encode()
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-issuer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# ---- the registry ----------------------------------------------------------------------


@dataclass
class Registry:
    mode: Mode
    port: int
    root: Path
    storage: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None
    token_issuer: TokenIssuer | None = None
    ca_cert: Path | None = None  # set when the registry serves HTTPS (tls=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_cert else 'http'}://{self.host}"

    def _ssl_context(self) -> Any:
        if self.ca_cert is None:
            return None
        import ssl

        return ssl.create_default_context(cafile=str(self.ca_cert))

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.token_issuer is not None:
            self.token_issuer.stop()

    def blob_path(self, digest: str) -> Path:
        """Where the registry's filesystem driver keeps a blob's bytes."""
        algorithm, _, hexpart = digest.partition(":")
        return (
            self.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"
        )

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the registry completed, in order."""
        out: list[tuple[str, str, int]] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") not in ("response completed", "response completed with error"):
                continue
            out.append(
                (
                    str(entry.get("http.request.method")),
                    urllib.parse.urlsplit(str(entry.get("http.request.uri"))).path,
                    int(entry.get("http.response.status", 0)),
                )
            )
        return out

    def settled_requests(self, timeout: float = 60.0) -> list[tuple[str, str, int]]:
        """requests(), once every request answered before this call is in the log.

        The registry logs a request after answering it. A request of our own,
        sent now, is logged after those: wait for it, and leave it out.
        """
        marker = f"/v2/log-marker-{secrets.token_hex(8)}/tags/list"
        self.request("GET", marker)  # a 404: answered, which is all it takes
        deadline = time.monotonic() + timeout
        while True:
            done = self.requests()
            paths = [path for _, path, _ in done]
            if marker in paths:
                return done[: paths.index(marker)]
            if time.monotonic() > deadline:
                raise AssertionError(f"the registry never logged {marker}")
            time.sleep(0.02)

    def auth_headers(self, repo: str | None = None) -> dict[str, str]:
        """Headers that authorise push and pull on `repo` (and the catalog) in this mode."""
        if self.mode == "basic":
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.mode == "token":
            assert self.token_issuer is not None
            scopes = ["registry:catalog:*"]
            if repo:
                scopes.append(f"repository:{repo}:pull,push,delete")
            return {"Authorization": "Bearer " + self.token_issuer.issue(self.username, scopes)}
        return {}

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        repo: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Raw HTTP against the registry (authenticated); returns (status, headers, body).

        `path` may also be an absolute URL (an upload Location). The repository
        for a token's scope is taken from a /v2/<repo>/... path unless given.
        """
        url = path if path.startswith("http") else self.url + path
        if repo is None:
            repo = _repo_of(urllib.parse.urlsplit(url).path)
        all_headers = {**self.auth_headers(repo), **(headers or {})}
        req = urllib.request.Request(url, data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self._ssl_context()) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _repo_of(path: str) -> str | None:
    if not path.startswith("/v2/"):
        return None
    parts = path[4:].split("/")
    for marker in ("manifests", "blobs", "tags"):
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join(parts[:i]) or None
    return None


def _htpasswd(path: Path, user: str, password: str) -> None:
    out = subprocess.run(
        ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
    ).stdout
    path.write_text(out.strip() + "\n")


def _wait_ready(reg: Registry, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited with {reg.proc.returncode}: "
                + reg.log_path.read_text(errors="replace")[-2000:]
            )
        try:
            ctx = reg._ssl_context()
            with urllib.request.urlopen(reg.url + "/v2/", timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry on {reg.host} not ready after {timeout}s: {last}")


def start_registry(
    tmp: Path,
    mode: Mode = "plain",
    *,
    username: str = TEST_USER,
    password: str = TEST_PASSWORD,
    anonymous_pull: bool = True,
    tls: bool = False,
    timeout: float = 20.0,
) -> Registry:
    """Start docker-registry in `mode` with its state under a fresh dir in `tmp`.

    With `tls=True` it serves HTTPS with a self-signed certificate (`reg.ca_cert`).
    """
    root = Path(tmp) / f"registry-{mode}-{secrets.token_hex(4)}"
    storage = root / "storage"
    storage.mkdir(parents=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": "", "secret": secrets.token_hex(16)},
    }
    ca_cert: Path | None = None
    if tls:
        ca_cert, tls_key = _make_tls_cert(root)
        config["http"]["tls"] = {"certificate": str(ca_cert), "key": str(tls_key)}
    issuer: TokenIssuer | None = None
    user: str | None = None
    pw: str | None = None
    if mode == "basic":
        _htpasswd(root / "htpasswd", username, password)
        config["auth"] = {"htpasswd": {"realm": "portique-test", "path": str(root / "htpasswd")}}
        user, pw = username, password
    elif mode == "token":
        key, cert_der, bundle = _make_signing_cert(root)
        issuer = TokenIssuer(key, cert_der, {username: password}, anonymous_pull=anonymous_pull)
        issuer.start()
        config["auth"] = {
            "token": {
                "realm": issuer.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER_NAME,
                "rootcertbundle": str(bundle),
            }
        }
        user, pw = username, password
    elif mode != "plain":
        raise ValueError(f"unknown registry mode {mode!r}")
    last_error: Exception | None = None
    # The free port may be taken between probing and binding: retry a few times.
    for _attempt in range(3):
        port = free_port()
        config["http"]["addr"] = f"127.0.0.1:{port}"
        config_path = root / "config.yml"
        config_path.write_text(json.dumps(config, indent=1))
        log_path = root / f"registry-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config_path)],
                # distribution reads REGISTRY_* variables as config overrides (and
                # podman users have REGISTRY_AUTH_FILE set): keep them all out.
                env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        reg = Registry(mode, port, root, storage, log_path, proc, user, pw, issuer, ca_cert)
        try:
            _wait_ready(reg, timeout)
        except RuntimeError as exc:
            last_error = exc
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            continue
        return reg
    if issuer is not None:
        issuer.stop()
    raise RuntimeError(f"could not start docker-registry: {last_error}")


# ---- a misbehaving front for the registry ------------------------------------------------


@dataclass
class ProxyRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RegistryProxy:
    """An HTTP proxy in front of a (plain) registry that misbehaves on request.

    proxy = RegistryProxy(reg.url).start()      # proxy.host is what clients use
    proxy.fail_next = 2                         # next 2 requests: 503
    proxy.cut_blobs = 1; proxy.cut_after = 1000 # next blob GET > 1000 B: drop after 1000 B
    proxy.redirect_blobs = True                 # blob GETs: 307 to /_storage on "localhost"
    proxy.manifest_content_type = "text/html"   # rewrite manifest Content-Type
    proxy.throttle = 0.01                       # sleep per 64 KiB of body
    proxy.requests                              # what was asked (method, path, headers)
    proxy.stop()
    """

    upstream: str
    fail_next: int = 0
    fail_status: int = 503
    cut_blobs: int = 0
    cut_after: int = 0
    cut_paths: str = "/blobs/sha256:"  # which GETs cut_blobs applies to (a path substring)
    redirect_blobs: bool = False
    manifest_content_type: str | None = None
    throttle: float = 0.0
    requests: list[ProxyRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RegistryProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # A TLS hello (clients probe insecure registries with HTTPS first):
                # close at once, as a plain-HTTP registry would fail it.
                try:
                    first = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return
                if first != b"\x16":
                    super().handle()

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _take(self, attr: str) -> bool:
        with self._lock:
            n = getattr(self, attr)
            if n > 0:
                setattr(self, attr, n - 1)
                return True
            return False

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        import http.client

        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        headers = {k: v for k, v in h.headers.items()}
        with self._lock:
            self.requests.append(ProxyRequest(h.command, h.path, headers))
        if self._take("fail_next"):
            self._reply(h, self.fail_status, {}, b'{"errors":[{"code":"UNAVAILABLE"}]}')
            return
        path = h.path
        is_blob_get = h.command == "GET" and "/blobs/sha256:" in path
        if self.redirect_blobs and is_blob_get and not path.startswith("/_storage"):
            # Another host name for the same socket: the client must drop Authorization.
            location = f"http://localhost:{self.port}/_storage{path}"
            self._reply(h, 307, {"Location": location}, b"")
            return
        if path.startswith("/_storage"):
            path = path[len("/_storage") :]
        up = urllib.parse.urlsplit(self.upstream)
        assert up.hostname is not None, self.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        fwd["Host"] = up.netloc
        conn.request(h.command, path, body=body, headers=fwd)
        resp = conn.getresponse()
        out_headers = {
            k: v
            for k, v in resp.getheaders()
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive")
        }
        if "/manifests/" in path and self.manifest_content_type and h.command == "GET":
            out_headers["Content-Type"] = self.manifest_content_type
        # Only bodies longer than the cut count (a small config blob is left alone).
        long_body = int(resp.getheader("Content-Length") or 0) > self.cut_after
        cuttable = h.command == "GET" and self.cut_paths in path and long_body
        cut = self.cut_after if cuttable and self._take("cut_blobs") else None
        h.send_response(resp.status)
        for k, v in out_headers.items():
            if k.lower() == "location" and v.startswith(self.upstream):
                v = f"http://{self.host}" + v[len(self.upstream) :]
            h.send_header(k, v)
        if "content-length" not in {k.lower() for k in out_headers}:
            h.send_header("Content-Length", "0")
        h.end_headers()
        sent = 0
        try:
            while h.command != "HEAD":
                chunk = resp.read(65536)
                if not chunk:
                    break
                if cut is not None and sent + len(chunk) >= cut:
                    h.wfile.write(chunk[: cut - sent])
                    h.wfile.flush()
                    h.close_connection = True
                    # Drop the connection mid-body, as a network failure would.
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                h.wfile.write(chunk)
                sent += len(chunk)
                if self.throttle:
                    time.sleep(self.throttle)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            conn.close()

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


__all__ = [
    "TEST_PASSWORD",
    "TEST_USER",
    "TOKEN_SERVICE",
    "Registry",
    "RegistryProxy",
    "TokenIssuer",
    "free_port",
    "start_registry",
]
