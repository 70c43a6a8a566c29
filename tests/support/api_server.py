"""`portique serve` for the API tests: start one on a socket, drive it with the
real docker CLI (/usr/local/bin/docker 28, else Debian's), stop it by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support.engine_cli import PORTIQUE, Portique

DOCKER = next(
    (p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(p, os.X_OK)), ""
)


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
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

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
