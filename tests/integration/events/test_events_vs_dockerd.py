"""`events` against dockerd 20.10 (issue 13, item 3): the same commands through
both engines give the same actions with the same attributes, in the same
order (ids and times aside), and the same healthcheck record."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.daemons import Daemon, kill_pidfile, kill_strays, remove_cgroup_tree, unmount_under
from support.engine_cli import Portique
from support.events_cli import DEADLINE, now
from support.rootfs import make_busybox_rootfs

HEX = re.compile(r"[0-9a-f]{64}")


class Docker:
    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", f"unix://{self.sock}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str) -> str:
        r = self(*args)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    assert shutil.which("dockerd"), "dockerd is missing: scripts/setup.sh installs docker.io"
    base = tmp_path_factory.mktemp("evdockerd")
    parent = f"portique/events-dockerd-{os.getpid()}"
    config = base / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
    argv = [
        "dockerd", "--config-file", str(config), "--data-root", str(base / "data"),
        "--exec-root", str(base / "exec"), "--host", f"unix://{base / 'docker.sock'}",
        "--pidfile", str(base / "docker.pid"), "--exec-opt", "native.cgroupdriver=cgroupfs",
        "--cgroup-parent", f"/{parent}", "--bridge", "none", "--iptables=false",
        "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
    ]  # fmt: skip
    daemon = Daemon("dockerd", argv, base / "dockerd.log")
    d = Docker(base / "docker.sock")
    try:
        daemon.wait_until(
            lambda: (base / "docker.sock").exists() and d("version").returncode == 0,
            "answering on its socket",
        )
        rootfs = make_busybox_rootfs(base / "rootfs")
        tar_path = base / "busybox.tar"
        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(rootfs.iterdir()):
                tar.add(entry, arcname=entry.name)
        d.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar_path), "busybox:latest")
        yield d
    finally:
        if daemon.proc.poll() is None:
            ids = d("ps", "-aq").stdout.split()
            if ids:
                d("rm", "-f", *ids)
        daemon.stop()
        kill_pidfile(base / "exec/containerd/containerd.pid")
        kill_strays(base, (base / "exec/containerd/daemon/io.containerd.runtime.v2.task/moby",))
        unmount_under(base)
        remove_cgroup_tree(parent)


def _normal(line: str) -> str:
    """An event line without its time and with ids as ID."""
    text = line.split(" ", 1)[1]
    return HEX.sub("ID", text)


def _events(run: Portique | Docker, since: str, *filters: str, want: str) -> list[str]:
    end = time.monotonic() + DEADLINE
    while True:
        out = run("events", "--since", since, "--until", now(), *filters)
        lines = [_normal(x) for x in out.stdout.splitlines()]
        if any(want in x for x in lines) or time.monotonic() > end:
            return lines
        time.sleep(0.1)


def _both(pq: Portique, docker: Docker, script: list[list[str]], *filters: str, want: str) -> tuple[list[str], list[str]]:  # fmt: skip
    got = []
    for run in (pq, docker):
        since = now()
        for argv in script:
            run(*argv)
        got.append(_events(run, since, *filters, want=want))
    return got[0], got[1]


def test_container_events_as_dockerd(pq: Portique, docker: Docker, tmp_path: Path) -> None:
    script = [
        ["run", "--rm", "--name", "vs-rm", "--label", "a=b", "--network", "none",
         "busybox", "sh", "-c", "exit 3"],
        ["run", "-d", "--name", "vs-d", "--network", "none", "busybox", "sleep", "1000"],
        ["pause", "vs-d"], ["unpause", "vs-d"], ["rename", "vs-d", "vs-d2"],
        ["kill", "-s", "USR1", "vs-d2"], ["exec", "vs-d2", "sh", "-c", "exit 4"],
        ["commit", "-m", "hello", "vs-d2", "vs-commit:1"], ["top", "vs-d2"],
        ["export", "-o", str(tmp_path / "export.tar"), "vs-d2"],
        ["cp", "vs-d2:/bin/sh", str(tmp_path / "sh")],
        ["cp", str(tmp_path / "export.tar"), "vs-d2:/in.tar"],
        ["rm", "-f", "vs-d2"],
    ]  # fmt: skip
    ours, theirs = _both(pq, docker, script, "--filter", "type=container", want="name=vs-d2)")
    assert ours == theirs


def test_volume_and_image_events_as_dockerd(pq: Portique, docker: Docker) -> None:
    script = [
        ["volume", "create", "vs-vol"],
        ["run", "--rm", "--network", "none", "-v", "vs-vol:/data", "busybox", "true"],
        ["volume", "rm", "vs-vol"],
        ["tag", "busybox", "vs-tag:1"],
        ["rmi", "vs-tag:1"],
    ]  # fmt: skip
    ours, theirs = _both(
        pq, docker, script, "--filter", "type=volume", "--filter", "type=image", want="untag"
    )
    assert ours == theirs


def test_healthcheck_as_dockerd(pq: Portique, docker: Docker) -> None:
    flags = ["--health-cmd", "cat /ok", "--health-interval", "300ms", "--health-retries", "2"]
    for run in (pq, docker):
        with contextlib.suppress(Exception):
            run("rm", "-f", "vs-hc")
    records = []
    for run in (pq, docker):
        since = now()
        run("run", "-d", "--name", "vs-hc", "--network", "none", *flags, "busybox", "sleep", "1000")
        lines = _events(run, since, "--filter", "event=health_status", want="unhealthy")
        health = json.loads(run("inspect", "-f", "{{json .State.Health}}", "vs-hc").stdout)
        config = run("inspect", "-f", "{{json .Config.Healthcheck}}", "vs-hc").stdout
        status = run("ps", "--filter", "name=vs-hc", "--format", "{{.Status}}").stdout
        run("rm", "-f", "vs-hc")
        first = health["Log"][0]
        records.append(
            (
                lines[0],
                health["Status"],
                sorted(first),
                first["ExitCode"],
                first["Output"],
                config,
                status.split(" (")[1],
            )
        )
    assert records[0] == records[1]
