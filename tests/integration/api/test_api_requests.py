"""Raw requests to `portique serve`: hostile input gets a 4xx with a clear
message and leaves nothing behind; the socket's rules; many clients at once."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import stat
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from support.api_server import Server, start_server
from support.engine_cli import PORTIQUE, Portique

pytestmark = pytest.mark.root


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self.path = str(path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.path)
        self.sock = s


def call(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    ctype: str = "application/json",
) -> tuple[int, Any]:
    conn = _Unix(server.sock)
    try:
        headers = {"Content-Type": ctype} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data) if data else None
    except ValueError:
        return resp.status, data


def _containers(server: Server) -> list[str]:
    return server.docker("ps", "-aq").stdout.split()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "invalid JSON in request body"),
        (b"[]", 400, "invalid JSON in request body: expected an object"),
        (b"", 400, "request body is empty"),
        (b'{"Image": "busybox", "Bogus": 1}', 400, "unknown field Config.Bogus"),
        (
            b'{"Image": "busybox", "HostConfig": {"Nope": true}}',
            400,
            "unknown field HostConfig.Nope",
        ),
        (b'{"Image": "busybox", "Cmd": 5}', 400, "invalid Config.Cmd: want string or array"),
        (b'{"Image": "busybox", "Env": [1]}', 400, "invalid Config.Env: want an array of strings"),
        (
            b'{"Image": "busybox", "HostConfig": {"Memory": "lots"}}',
            400,
            "invalid HostConfig.Memory: want integer",
        ),
        (
            b'{"Image": "busybox", "HostConfig": {"Privileged": 1}}',
            400,
            "invalid HostConfig.Privileged: want boolean",
        ),
        (
            b'{"Image": "busybox", "HostConfig": {"Devices": [{"PathOnHost": "/dev/sda"}]}}',
            400,
            "HostConfig.Devices is not supported by portique",
        ),
        (
            b'{"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "syslog"}}}',
            400,
            "HostConfig.LogConfig.Type 'syslog' is not supported",
        ),
        (b'{"Image": "no-such-image:1"}', 404, "No such image: no-such-image:1"),
        (b'{"Image": "../../etc"}', 404, "No such image"),
        (b'{"Image": "busybox", "HostConfig": {"Binds": ["/tmp:relative"]}}', 400, ""),
    ],
)
def test_bad_create_bodies_are_4xx_and_create_nothing(
    server: Server, body: bytes, status: int, words: str
) -> None:
    got, answer = call(server, "POST", "/v1.43/containers/create", body)
    assert got == status, answer
    assert isinstance(answer, dict)
    assert answer["message"].startswith(words) or words in answer["message"], answer
    assert _containers(server) == []
    assert (
        list((server.pq.root / "containers").glob("*")) == []
        if (server.pq.root / "containers").exists()
        else True
    )


def test_huge_bodies_and_bad_paths(server: Server) -> None:
    # A body over the bound is refused from its Content-Length, before it is read.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(server.sock))
        s.sendall(
            b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b'application/json\r\nContent-Length: 5000000000\r\n\r\n{"Image": "'
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"request body too large" in reply
    assert _containers(server) == []
    assert call(server, "GET", "/v1.43/nowhere")[0] == 404
    assert call(server, "GET", "/v1.12/containers/json")[1]["message"].startswith(
        "client version 1.12 is too old"
    )
    got, answer = call(server, "GET", "/containers/json?filters=%7Bbad")
    assert got == 400
    got, answer = call(server, "GET", '/containers/json?filters={"nope":["x"]}'.replace('"', "%22"))
    assert (got, answer["message"]) == (400, "invalid filter 'nope'")
    got, answer = call(server, "POST", "/containers/nope/start")
    assert (got, answer["message"]) == (404, "No such container: nope")


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archive_put_refuses_traversal(server: Server, tmp_path: Path) -> None:
    server.docker("run", "-d", "--network", "none", "--name", "arch", "busybox", "sleep", "300")
    outside = tmp_path / "escaped"
    for name in ("../../../../../../" + str(outside).lstrip("/"), str(outside)):
        info = tarfile.TarInfo(name)
        got, answer = call(
            server,
            "PUT",
            "/containers/arch/archive?path=/tmp",
            _tar([(info, b"x")]),
            "application/x-tar",
        )
        assert 400 <= got < 500, answer
        assert not outside.exists()
    link = tarfile.TarInfo("ln")
    link.type = tarfile.SYMTYPE
    link.linkname = str(tmp_path)
    through = tarfile.TarInfo("ln/escaped")
    got, answer = call(
        server,
        "PUT",
        "/containers/arch/archive?path=/tmp",
        _tar([(link, b""), (through, b"x")]),
        "application/x-tar",
    )
    assert 400 <= got < 500, answer
    assert not outside.exists()
    ok = tarfile.TarInfo("fine.txt")
    got, _ = call(
        server,
        "PUT",
        "/containers/arch/archive?path=/tmp",
        _tar([(ok, b"fine\n")]),
        "application/x-tar",
    )
    assert got == 200
    assert server.docker("exec", "arch", "cat", "/tmp/fine.txt").stdout == "fine\n"
    got, answer = call(server, "GET", "/containers/arch/archive?path=/no/such")
    assert got == 404


def test_the_socket_rules(engine_root: Portique, tmp_path: Path) -> None:
    sock = tmp_path / "s" / "d.sock"
    sock.parent.mkdir()
    # A stale socket file (nobody listening) is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    srv = start_server(engine_root, sock)
    try:
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert (st.st_uid, st.st_gid) == (0, 0)
        # A live server on the path: the second one refuses, the first keeps serving.
        second = subprocess.run(
            [PORTIQUE, "serve", "-H", f"unix://{sock}"],
            env=engine_root.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 125
        assert "another server is listening on this socket" in second.stderr
        assert "Traceback" not in second.stderr
        assert srv.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        # TCP: a non-loopback address is refused without TLS client verification.
        tcp = subprocess.run(
            [PORTIQUE, "serve", "-H", "tcp://0.0.0.0:2399"],
            env=engine_root.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert tcp.returncode == 125
        assert "needs --tlsverify" in tcp.stderr
        # Many clients at once: a stuck one (half a request head) blocks nobody.
        stuck = [socket.socket(socket.AF_UNIX) for _ in range(5)]
        for s in stuck:
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        for _ in range(10):
            assert call(srv, "GET", "/_ping") == (200, b"OK")
        assert time.monotonic() - t0 < 30
        for s in stuck:
            s.close()
    finally:
        assert srv.stop() == 0
    assert not sock.exists()


def test_group_owns_the_socket(engine_root: Portique, tmp_path: Path) -> None:
    import grp

    group = next(g for g in ("docker", "adm", "daemon", "users") if _has_group(g))
    srv = start_server(engine_root, tmp_path / "g.sock", "--group", group)
    try:
        assert os.stat(srv.sock).st_gid == grp.getgrnam(group).gr_gid
    finally:
        assert srv.stop() == 0


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_docker_py_containers_run(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host, version="1.43")
    try:
        out = client.containers.run(
            "busybox", ["sh", "-c", "echo from docker-py"], remove=True, network_mode="none"
        )
        assert out == b"from docker-py\n"
        c = client.containers.run(
            "busybox", ["sleep", "300"], detach=True, name="dpy", network_mode="none"
        )
        code, output = c.exec_run(["sh", "-c", "echo exec; exit 3"])
        assert (code, output) == (3, b"exec\n")
        c.put_archive("/tmp", _tar([(tarfile.TarInfo("p.txt"), b"put\n")]))
        stream, stat_ = c.get_archive("/tmp/p.txt")
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("p.txt")
            assert member is not None
            assert member.read() == b"put\n"
        assert stat_["name"] == "p.txt"
        c.kill()
        assert c.wait()["StatusCode"] == 137
        c.remove()
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def _certs(d: Path) -> None:
    """ca.pem, server-{cert,key}.pem (for 127.0.0.1), client-{cert,key}.pem."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))  # fmt: skip

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("pq-ca")).issuer_name(name("pq-ca"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who, usage, serial in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, 2),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, 3),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(name(f"pq-{who}")).issuer_name(name("pq-ca"))
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )  # fmt: skip
        if who == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        (d / f"{who}-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, d / f"{who}-key.pem")


def test_tls_with_client_certificates(engine_root: Portique, tmp_path: Path) -> None:
    from support.api_server import DOCKER

    _certs(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = start_server(
        engine_root, tmp_path / "tls.sock", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
        "--tlscacert", str(tmp_path / "ca.pem"), "--tlscert", str(tmp_path / "server-cert.pem"),
        "--tlskey", str(tmp_path / "server-key.pem"),
    )  # fmt: skip
    try:
        host = [
            "-H",
            f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert",
            str(tmp_path / "ca.pem"),
        ]
        ok = subprocess.run(
            [DOCKER, *host, "--tlscert", str(tmp_path / "client-cert.pem"),
             "--tlskey", str(tmp_path / "client-key.pem"),
             "version", "--format", "{{.Server.APIVersion}}"],
            capture_output=True, text=True, timeout=60, env=srv.env, check=False,
        )  # fmt: skip
        assert (ok.returncode, ok.stdout) == (0, "1.43\n"), ok.stderr
        # Without a client certificate the handshake fails: nothing is served.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            try:
                raw.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = raw.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert b"OK" not in answer
    finally:
        assert srv.stop() == 0
