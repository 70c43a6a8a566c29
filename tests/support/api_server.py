"""Private `portique serve` instances for the tests that drive the Docker Engine API.

`start_server(pq, sock)` (tests/integration/api): a server on a given engine
root (a `Portique` runner's) and socket, driven with the real docker CLI
(/usr/local/bin/docker 28, else Debian's), stopped by pid (`Server`).

`start_api_server(base, name=...)` (tests/integration/api_objects,
tests/compat/api): a server with its own engine root, run root and unix
socket, a busybox image imported into it, and the clients a test drives it
with (`ApiServer`).

    from support.api_server import start_api_server

    with start_api_server(tmp_path, name="img") as srv:
        srv.host                       # "unix:///run/pq-img-123/docker.sock"
        srv.docker("images")           # the real docker CLI (DOCKER_HOST, own DOCKER_CONFIG)
        srv.request("GET", "/images/json")    # raw HTTP: (status, headers, body bytes)
        srv.json("GET", "/volumes")    # raw HTTP, the body parsed (asserts a 2xx)
        srv.pq("ps", "-a")             # portique's own CLI on the same roots
        client = srv.client()          # docker-py's DockerClient (closed at stop)

The server is started with `--ready-fd` and stopped by its PID (SIGTERM); at
stop every container of the root is removed through portique's CLI, its
networks' bridges and nftables tables are destroyed, and the run root goes.
Nothing is left running when the block ends, even when the test failed.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from support.engine_cli import PORTIQUE, Portique

# The docker CLI the tests drive: $PORTIQUE_TEST_DOCKER (to run them with
# another one), else 28.x where present, else Debian's docker.io (20.10).
DOCKER = os.environ.get("PORTIQUE_TEST_DOCKER") or next(
    (p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(p, os.X_OK)), ""
)
READY_TIMEOUT = 120.0

__all__ = [
    "DOCKER",
    "ApiServer",
    "Server",
    "UnixHTTPConnection",
    "busybox_tar",
    "start_api_server",
    "start_server",
]


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the API's transport)."""

    def __init__(self, path: str, timeout: float = 120.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def busybox_tar(dest: Path) -> Path:
    """A tar of a busybox root (Debian's busybox-static), for `import`."""
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    shutil.rmtree(rootfs)
    return tar_path


class ApiServer:
    def __init__(self, base: Path, name: str) -> None:
        self.base = base
        self.root = base / "root"
        # Short: unix socket paths must stay under 108 bytes.
        self.run_root = Path(f"/run/pq-{name}-{os.getpid()}")
        self.sock = self.run_root / "docker.sock"
        self.log = base / "serve.log"
        self.docker_config = base / "docker-config"
        self.docker_config.mkdir(parents=True, exist_ok=True)
        self.env = dict(
            os.environ, PORTIQUE_ROOT=str(self.root), PORTIQUE_RUNROOT=str(self.run_root)
        )
        self.pq = Portique(self.env, self.root, self.run_root)
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[Any] = []

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def docker_env(self) -> dict[str, str]:
        """The environment of a docker client of this server (CLI, compose, docker-py)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(
            DOCKER_HOST=self.host,
            DOCKER_CONFIG=str(self.docker_config),
            DOCKER_BUILDKIT="0",
            DOCKER_CLI_HINTS="false",
        )
        return env

    # -- life -----------------------------------------------------------------------

    def start(self) -> None:
        self.run_root.mkdir(parents=True, exist_ok=True)
        r, w = os.pipe()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PORTIQUE, "serve", "-H", self.host, "--ready-fd", str(w)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(w,),
            )
        os.close(w)
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            ready = b""
            while time.monotonic() < deadline and not ready:
                rl, _, _ = select.select([r], [], [], 1.0)
                if rl:
                    ready = os.read(r, 64) or b"eof"
                if self.proc.poll() is not None:
                    break
        finally:
            os.close(r)
        if not ready.startswith(b"ready"):
            self.stop()
            raise AssertionError(f"portique serve did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        self._clients.clear()
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.root.exists():
            ids = self.pq("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                self.pq("rm", "-f", *ids, timeout=120)
            from portique.network.networks import Networks

            nets = Networks(self.root, run_root=self.run_root)
            try:
                nets.destroy()
            finally:
                nets.close()
        shutil.rmtree(self.run_root, ignore_errors=True)

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients ----------------------------------------------------------------------

    @functools.cached_property
    def cli_major(self) -> int:
        """The docker CLI's major version (20 for Debian's, 28 for /usr/local/bin's)."""
        out = subprocess.run(
            [DOCKER, "version", "--format", "{{.Client.Version}}"],
            env=self.docker_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        return int(out.strip().split(".")[0] or 0)

    def docker(
        self,
        *args: str,
        input: bytes | str | None = None,
        timeout: float = 180,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The real docker CLI against this server."""
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [DOCKER, *args],
            env=self.docker_env,
            input=data,
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
            stdin=None if data is not None else subprocess.DEVNULL,
        )
        done = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = UnixHTTPConnection(str(self.sock), timeout)
        try:
            hdrs = dict(headers or {})
            data: bytes | None
            if isinstance(body, dict | list):
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            else:
                data = body
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, _headers, data = self.request(method, path, body, **kw)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {data!r}"
        return json.loads(data) if data.strip() else None

    def client(self) -> Any:
        """docker-py's high-level client, closed at stop."""
        import docker

        c = docker.DockerClient(base_url=self.host, timeout=180)
        self._clients.append(c)
        return c


def start_api_server(base: Path, *, name: str = "api", busybox: bool = True) -> ApiServer:
    """A started server on a fresh root; with `busybox`, `busybox:latest` imported."""
    base.mkdir(parents=True, exist_ok=True)
    srv = ApiServer(base, name)
    try:
        if busybox:
            tar = busybox_tar(base)
            srv.pq.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest")
            tar.unlink()
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


# ---- a server on a given root (tests/integration/api) ---------------------------------


@dataclass
class Server:
    pq: Portique
    sock: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def docker(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [DOCKER, "-H", self.host, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            env=self.env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} -> {proc.returncode}: {proc.stderr}\n"
                f"server log: {self.log.read_text()[-3000:]}"
            )
        return proc

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.sock.parent / "docker-config")
        return env

    def workers(self) -> list[int]:
        """The server's children but its monitors' zygote (warm/zygote.py)."""
        from portique.warm.zygote import COMM

        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        found = []
        for pid in (int(p) for p in text.split()):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == COMM:
                    continue
            except OSError:
                continue  # gone meanwhile
            found.append(pid)
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(pq: Portique, sock: Path, *extra: str) -> Server:
    log = sock.parent / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [PORTIQUE, "serve", "-H", f"unix://{sock}", *extra],
            env=pq.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"portique serve exited {proc.returncode}: {log.read_text()}")
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(sock))
                    break
                except OSError:
                    pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"portique serve not listening: {log.read_text()}")
        time.sleep(0.02)
    return Server(pq, sock, proc, log)
