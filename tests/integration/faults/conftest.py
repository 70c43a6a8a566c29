"""Fixtures for the crash tests: a fresh engine root per test (with a busybox image),
a registry holding a multi-layer image, a saved archive of it."""

from __future__ import annotations

import itertools
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import faultpoints
from support import oci_build as ob
from support.crash_engine import Engine
from support.registry import Registry, start_registry
from support.rootfs import make_busybox_rootfs

_roots = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    seed, count = faultpoints.settings()
    chosen = faultpoints.chosen(seed, count)
    return (
        f"fault injection: PORTIQUE_FAULT_SEED={seed}, {len(chosen)} of "
        f"{len(faultpoints.points())} crash points"
    )


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("busybox")
    rootfs = make_busybox_rootfs(base / "rootfs")
    tar = base / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(rootfs.iterdir()):
            t.add(entry, arcname=entry.name)
    return tar


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg"), "plain") as reg:
        yield reg


@pytest.fixture(scope="session")
def remote_image(registry: Registry) -> str:
    """A three-layer image (busybox plus two layers of random data) in the registry."""
    base = ob.busybox_layer()
    rnd = ob.random_image(layers=2, layer_size=512 << 10, seed=91)
    img = ob.image_from_layers([base, *rnd.layers], cmd=["/bin/sh"])
    ob.push_image(registry, "faults/img", "v1", img)
    return f"{registry.host}/faults/img:v1"


def _short_run_root() -> Path:
    # Unix socket paths (monitor sockets) must stay under 108 bytes.
    return Path(f"/run/pq-flt-{os.getpid()}-{next(_roots)}")


def _new_engine(base: Path, tmp: Path) -> Engine:
    run_root = _short_run_root()
    if _fstype(base) == "overlay":
        # Inside the cgroup v2 VM / is an overlay, and an overlay's upper dir
        # cannot live on one: use the VM's tmpfs engine root instead.
        base = Path("/var/lib/portique") / run_root.name
        base.mkdir(parents=True, exist_ok=True)
    root = base / "root"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTIQUE_FAULT")},
        "PORTIQUE_ROOT": str(root),
        "PORTIQUE_RUNROOT": str(run_root),
        "DOCKER_CONFIG": str(tmp / "docker-config"),
        "REGISTRY_AUTH_FILE": str(tmp / "no-auth.json"),
    }
    return Engine(root, run_root, env)


def _fstype(path: Path) -> str:
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            point = pre.split()[4]
            if (str(path) + "/").startswith(point.rstrip("/") + "/") and len(point) >= len(best):
                best, kind = point, post.split()[0]
    return kind


def _destroy(e: Engine) -> None:
    # The root's bridge and nftables tables outlive its directory: remove them.
    from portique.network.networks import Networks

    nets = Networks(e.root, run_root=e.run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(e.run_root)], check=False)


@pytest.fixture(scope="session")
def saved_archive(tmp_path_factory: pytest.TempPathFactory, remote_image: str) -> Iterator[Path]:
    """`portique save` of the remote image: what `load` scenarios read."""
    base = tmp_path_factory.mktemp("saver")
    e = _new_engine(base, base)
    try:
        e.ok("pull", "-q", remote_image)
        archive = base / "img.tar"
        e.ok("save", "-o", str(archive), remote_image)
        yield archive
    finally:
        _destroy(e)


@pytest.fixture
def engine(tmp_path: Path, busybox_tar: Path) -> Iterator[Engine]:
    e = _new_engine(tmp_path, tmp_path)
    e.ok("import", "--change", 'CMD ["/bin/sh"]', str(busybox_tar), "busybox:latest")
    try:
        yield e
    finally:
        ids = e("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            e("rm", "-f", *ids)
        _destroy(e)
