"""Issue 13 item 5 side by side: the same `run` flags through a private dockerd
(Debian's 20.10 with its runc) and through portique, the container's own view
of the kernel compared line for line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.test_compat_dockerd import Docker, dockerd
from support.compat_images import BUSYBOX, CompatImages

pytestmark = [pytest.mark.compat, pytest.mark.root]

FLAGS = [
    "--network", "none", "--hostname", "h1", "--group-add", "4242", "--shm-size", "32m",
    "--sysctl", "kernel.shmmax=123456", "--sysctl", "kernel.msgmax=4096",
    "--domainname", "example.org", "--oom-score-adj", "321",
    "--memory-reservation", "40m", "--cpu-period", "50000", "--cpu-quota", "25000",
    "--label-file", "LABELS", "--expose", "7000-7001/udp",
]  # fmt: skip
SCRIPT = (
    "grep -E '^(Groups|Uid|Gid)' /proc/self/status;"
    " grep ' /dev/shm ' /proc/self/mountinfo | sed 's/.* - //';"
    " cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax /proc/sys/kernel/domainname"
    " /proc/self/oom_score_adj; hostname;"
    " cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_period_us"
    " /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
)
INSPECT = (
    "{{json .Config.Labels}} {{json .Config.ExposedPorts}} {{.Config.Domainname}}"
    " {{.HostConfig.ShmSize}} {{.HostConfig.IpcMode}} {{.HostConfig.OomScoreAdj}}"
    " {{json .HostConfig.Sysctls}} {{json .HostConfig.GroupAdd}}"
)


@pytest.fixture(scope="module")
def docker(
    tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages
) -> Iterator[Docker]:
    with dockerd(tmp_path_factory.mktemp("dockerd-flags"), compat_images) as d:
        yield d


def _portique(base: Path, images: CompatImages, *args: str) -> str:
    env = dict(os.environ, PORTIQUE_ROOT=str(base / "root"), PORTIQUE_RUNROOT=str(base / "run"))
    exe = str(Path(sys.executable).parent / "portique")
    p = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_run_flags_match_dockerd(
    docker: Docker, compat_images: CompatImages, tmp_path: Path
) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# team\nteam=core\ntier=web\n")
    flags = [str(labels) if f == "LABELS" else f for f in FLAGS]
    want = docker.ok("run", "--rm", *flags, BUSYBOX, "sh", "-c", SCRIPT)
    base = tmp_path / "pq"
    _portique(base, compat_images, "load", "-i", str(compat_images.busybox))
    try:
        got = _portique(base, compat_images, "run", "--rm", *flags, BUSYBOX, "sh", "-c", SCRIPT)
        assert got == want
        dcid = docker.ok("create", *flags, BUSYBOX).strip()
        pcid = _portique(base, compat_images, "create", *flags, BUSYBOX).strip()
        assert _portique(base, compat_images, "inspect", "-f", INSPECT, pcid) == docker.ok(
            "inspect", "-f", INSPECT, dcid
        )
        docker.ok("rm", dcid)
    finally:
        ids = _portique(base, compat_images, "ps", "-aq").split()
        if ids:
            _portique(base, compat_images, "rm", "-f", *ids)
        from portique.network.networks import Networks

        nets = Networks(base / "root", run_root=base / "run")
        try:
            nets.destroy()  # the default bridge, its nftables tables
        finally:
            nets.close()
