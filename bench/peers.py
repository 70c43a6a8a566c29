"""Peers the benchmarks start for themselves: a private dockerd.

`private_dockerd(base, busybox_archive)` starts Debian's dockerd with its own
data root, exec root, pidfile and socket under `base`, the cgroupfs driver
under a `portique/bench-dockerd-*` cgroup parent, and no iptables, IP
forwarding or masquerading changes on the host. Its default `bridge` network
is a bridge this module makes (`pqbench-d0`, 10.233.47.1/24) so that `docker
run` with the default network does Docker's real work (veth pair, bridge
port, IPAM) without touching docker0 or the host's firewall; the bridge goes
with the daemon. The daemon is stopped by its PID (SIGTERM, then SIGKILL),
the containers it left removed first, the mounts under `base` and the cgroup
parent cleaned up. Used by bench/run.py and bench/build.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from runtime_callers import Daemon, clean_up

BRIDGE = "pqbench-d0"
BRIDGE_ADDR = "10.233.47.1/24"


def _quiet(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> bool:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _bridge_up() -> bool:
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    return (
        _quiet(["ip", "link", "add", BRIDGE, "type", "bridge"])
        and _quiet(["ip", "addr", "add", BRIDGE_ADDR, "dev", BRIDGE])
        and _quiet(["ip", "link", "set", BRIDGE, "up"])
    )


@contextlib.contextmanager
def private_dockerd(base: Path, archive: Path | None = None) -> Iterator[dict[str, str] | None]:
    """The environment (DOCKER_HOST, DOCKER_CONFIG) of a private dockerd, or None."""
    if not (shutil.which("dockerd") and shutil.which("docker")):
        yield None
        return
    base.mkdir(parents=True, exist_ok=True)
    parent = f"portique/bench-dockerd-{os.getpid()}"
    (base / "daemon.json").write_text("{}")
    # An empty client config: podman, which shares the environment in the
    # benches, reads its registry auth from $DOCKER_CONFIG too.
    (base / "cli").mkdir(exist_ok=True)
    (base / "cli" / "config.json").write_text("{}")
    bridged = _bridge_up()
    argv = ["dockerd", "--config-file", str(base / "daemon.json"), "--data-root", str(base / "data"),
            "--exec-root", str(base / "exec"), "--host", f"unix://{base / 'docker.sock'}",
            "--pidfile", str(base / "docker.pid"), "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--cgroup-parent", f"/{parent}", "--bridge", BRIDGE if bridged else "none",
            "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--userland-proxy=false"]  # fmt: skip
    env = dict(
        os.environ, DOCKER_HOST=f"unix://{base / 'docker.sock'}", DOCKER_CONFIG=str(base / "cli")
    )
    daemon = Daemon(argv, base / "dockerd.log")
    try:
        try:
            daemon.wait_until(
                lambda: (
                    (base / "docker.sock").exists()
                    and _quiet(["docker", "version"], env, timeout=10)
                )
            )
        except RuntimeError as e:
            print(f"dockerd did not start: {str(e)[-300:]}")
            yield None
            return
        if archive is not None and not _quiet(["docker", "load", "-i", str(archive)], env):
            print("dockerd: cannot load the busybox image")
            yield None
            return
        yield env
    finally:
        if daemon.proc.poll() is None:
            ids = subprocess.run(
                ["docker", "ps", "-aq"], env=env, capture_output=True, text=True, check=False
            ).stdout.split()
            if ids:
                _quiet(["docker", "rm", "-f", *ids], env)
        daemon.stop()
        clean_up(base, parent)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
