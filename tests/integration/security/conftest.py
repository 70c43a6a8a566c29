"""Fixtures for the attack tests: the attack's images, a private copy of the
interpreter per test, the runtime and the CLI started from that copy."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.cli.runc.launcher import write_launcher
from support.escape import (
    EngineRoot,
    Interpreter,
    Outbox,
    PortiqueFrom,
    RuntimeFrom,
    make_attack_rootfs,
)


@pytest.fixture(scope="session")
def attack_rootfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("attack")
    return {
        kind: make_attack_rootfs(base / kind, shebang=kind == "shebang")
        for kind in ("plain", "shebang")
    }


@pytest.fixture
def interp(tmp_path: Path) -> Interpreter:
    # One per test: a monitor left running by an earlier test must not keep
    # this file busy (ETXTBSY would then block the write for the wrong reason).
    return Interpreter.copy_to(tmp_path / "python" / "python3")


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "out")


@pytest.fixture
def runtime(tmp_path: Path, interp: Interpreter) -> Iterator[RuntimeFrom]:
    launcher = tmp_path / "portique-runtime"
    write_launcher(str(launcher), python=str(interp.path))
    rt = RuntimeFrom(launcher, tmp_path / "state")
    yield rt
    for cid in rt("list", "-q", check=False).stdout.split():
        rt("delete", "--force", cid, check=False)


@pytest.fixture(scope="module")
def engine_root(
    tmp_path_factory: pytest.TempPathFactory, attack_rootfs: dict[str, Path]
) -> Iterator[EngineRoot]:
    base = tmp_path_factory.mktemp("engine")
    eng = EngineRoot(base / "root", Path(f"/run/pq-sec-test-{os.getpid()}"))
    env = dict(os.environ, **eng.env())
    for kind, rootfs in attack_rootfs.items():
        tar_path = base / f"{kind}.tar"
        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(rootfs.iterdir()):
                tar.add(entry, arcname=entry.name)
        cmd = [sys.executable, "-m", "portique", "import", str(tar_path), f"attack:{kind}"]
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    yield eng
    cli = [sys.executable, "-m", "portique"]
    ids = subprocess.run(
        [*cli, "ps", "-aq"], env=env, capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run([*cli, "rm", "-f", *ids], env=env, capture_output=True, timeout=120)
    from portique.network.networks import Networks

    nets = Networks(eng.root, run_root=eng.run_root)
    try:
        nets.destroy()
    finally:
        nets.close()
    subprocess.run(["rm", "-rf", str(eng.run_root)], check=False)


@pytest.fixture
def portique(interp: Interpreter, engine_root: EngineRoot) -> Iterator[PortiqueFrom]:
    cli = PortiqueFrom(interp, engine_root)
    before = set(cli("ps", "-aq", "--no-trunc").stdout.split())
    yield cli
    mine = set(cli("ps", "-aq", "--no-trunc", check=False).stdout.split()) - before
    if mine:
        cli("rm", "-f", *mine, check=False)
