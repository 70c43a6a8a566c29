"""docker-compose 1.29 (Debian's `docker-compose`) against `portique serve`: a
web server and a client that reaches it by service name, a named volume, a
healthcheck that the client waits for (`depends_on: condition:
service_healthy`), then `up -d`, `ps`, `logs`, `exec`, `down -v`, which leaves
no container, network or volume behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from support.api_server import ApiServer

pytestmark = pytest.mark.compat

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
PROJECT = "pqcompose"

COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: busybox
    command:
      - sh
      - -c
      - mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www
    volumes:
      - shared:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 5s
      retries: 60
  client:
    image: busybox
    depends_on:
      web:
        condition: service_healthy
    command:
      - sh
      - -c
      - wget -q -O - http://web:8080/ | tee /data/fetched && exec sleep 600
    volumes:
      - shared:/data
volumes:
  shared:
"""


def _compose(
    srv: ApiServer, project_dir: Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    env = dict(srv.docker_env, COMPOSE_INTERACTIVE_NO_CLI="1")
    return subprocess.run(
        [COMPOSE, "--no-ansi", "-p", PROJECT, *args],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _project_objects(srv: ApiServer) -> tuple[list[str], list[str], list[str]]:
    label = urllib.parse.quote(json.dumps({"label": [f"com.docker.compose.project={PROJECT}"]}))
    containers = [c["Names"][0] for c in srv.json("GET", f"/containers/json?all=1&filters={label}")]
    networks = [n["Name"] for n in srv.json("GET", "/networks") if n["Name"].startswith(PROJECT)]
    volumes = [
        v["Name"] for v in srv.json("GET", "/volumes")["Volumes"] if v["Name"].startswith(PROJECT)
    ]
    return containers, networks, volumes


def test_compose_two_services_healthcheck_volume(srv: ApiServer, tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE_FILE)
    try:
        up = _compose(srv, project, "up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        # `up -d` started the client only once web was healthy.
        health = srv.pq.inspect(f"{PROJECT}_web_1", "{{.State.Health.Status}}")
        assert health == "healthy"
        ps = _compose(srv, project, "ps")
        assert ps.returncode == 0, ps.stderr
        rows = {line.split()[0]: line for line in ps.stdout.splitlines()[2:] if line.strip()}
        assert set(rows) == {f"{PROJECT}_web_1", f"{PROJECT}_client_1"}
        assert "Up" in rows[f"{PROJECT}_client_1"]
        assert "(healthy)" in rows[f"{PROJECT}_web_1"]
        # The client reached web by its service name; wait for its log line.
        deadline = time.monotonic() + 120
        logs = ""
        while "hello-from-web" not in logs and time.monotonic() < deadline:
            got = _compose(srv, project, "logs", "--no-color", "client")
            assert got.returncode == 0, got.stderr
            logs = got.stdout
            if "hello-from-web" not in logs:
                time.sleep(0.2)
        assert "hello-from-web" in logs
        # The named volume is shared: web sees what the client wrote.
        ex = _compose(srv, project, "exec", "-T", "web", "cat", "/data/fetched")
        assert ex.returncode == 0, ex.stderr
        assert ex.stdout == "hello-from-web\n"
        containers, networks, volumes = _project_objects(srv)
        assert len(containers) == 2
        assert networks == [f"{PROJECT}_default"]
        assert volumes == [f"{PROJECT}_shared"]
        down = _compose(srv, project, "down", "-v", "-t", "1")
        assert down.returncode == 0, down.stdout + down.stderr
        assert _project_objects(srv) == ([], [], [])
    finally:
        _compose(srv, project, "down", "-v", "-t", "0")
