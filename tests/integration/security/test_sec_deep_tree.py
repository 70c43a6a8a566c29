"""A container's deep directory tree must not break the engine's commands.

A container can nest directories far deeper than Python's recursion limit in
its own filesystem and in its volumes (2000 levels take a second). Every walk
of those trees by the engine (removal of the container's files at `rm`, of a
volume, the sizes of `ps -s` and `system df -v`) must finish without
recursing per level: with shutil.rmtree, `rm` died with a RecursionError
after the row was gone, and the journal's recovery of that removal, run
by every later `run`, `rm` and `prune`, died the same way: one container made
the engine unusable for everybody.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar

DEPTH = 2000
NEST = f"i=0; while [ $i -lt {DEPTH} ]; do mkdir d && cd d || exit 1; i=$((i+1)); done"


@pytest.fixture
def pq(tmp_path: Path) -> Iterator[Portique]:
    try:
        with engine(tmp_path, f"pq-sec-deep-{os.getpid()}") as p:
            p.ok("import", str(image_tar(tmp_path / "img")), "bb:latest")
            yield p
    finally:
        # pytest's clean-up of old base dirs is shutil.rmtree: a deep tree left
        # (by a failing run) would break every later pytest run on this machine.
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path)], check=False)


def _no_traceback(p: object) -> None:
    err = getattr(p, "stderr", "")
    assert "Traceback" not in err, err[-2000:]


def test_deep_trees_in_a_container_and_its_volume(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "-v", "deepvol:/vol", "bb", "sh", "-c",
        f"(cd /tmp && {NEST}) && (cd /vol && {NEST}) && echo nested",
    ).strip()  # fmt: skip
    assert pq.ok("wait", cid, timeout=300).strip() == "0"
    assert pq.ok("logs", cid).strip() == "nested"
    for args in (("ps", "-a", "-s"), ("system", "df", "-v")):
        p = pq(*args)
        _no_traceback(p)
        assert p.returncode == 0, p.stderr
    p = pq("rm", "-v", cid)
    _no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert not (pq.root / "containers" / cid).exists(), "the container's files were left"
    p = pq("volume", "rm", "deepvol")
    _no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert not (pq.root / "volumes" / "deepvol").exists(), "the volume's files were left"
    # The next commands (and their recovery of earlier operations) still work.
    assert pq.ok("run", "--rm", "bb", "echo", "still").strip() == "still"
    pq.ok("system", "prune", "-f", "--volumes")


def test_deep_tree_of_a_removed_autoremove_container(pq: Portique) -> None:
    """--rm: the monitor removes the files itself, after the row is gone."""
    p = pq("run", "--rm", "bb", "sh", "-c", f"cd /tmp && {NEST} && echo nested", timeout=300)
    _no_traceback(p)
    assert p.stdout.strip() == "nested"
    import time

    deadline = time.monotonic() + 120
    while os.listdir(pq.root / "containers"):
        # The monitor finishes the removal after the CLI returns.
        assert time.monotonic() < deadline, os.listdir(pq.root / "containers")
        time.sleep(0.1)
    assert pq.ok("run", "--rm", "bb", "echo", "still").strip() == "still"


def test_build_of_a_deep_tree(pq: Portique, tmp_path: Path) -> None:
    """A Dockerfile decides how deep its RUN steps nest: the layer is written, the
    step's work dir removed, and the tree arrives whole in a container."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM bb\nRUN cd /tmp && {NEST} && touch bottom\nRUN echo second > /second\n"
    )
    p = pq("build", "-q", "-t", "deep", str(ctx), timeout=600)
    _no_traceback(p)
    assert p.returncode == 0, p.stderr
    work = pq.root / "build"
    assert not work.exists() or os.listdir(work) == [], "a step's work dir was left"
    out = pq.ok("run", "--rm", "deep", "sh", "-c", "find /tmp -name bottom | wc -l; cat /second")
    assert out.split() == ["1", "second"]


def test_export_leaves_nothing_out(pq: Portique, tmp_path: Path) -> None:
    """Whoever inspects a container through `export` sees all of it: a file nested
    below any depth limit would be hidden from them."""
    import tarfile
    import time

    nest = NEST.replace(str(DEPTH), "400")
    cid = pq.ok(
        "run", "-d", "bb", "sh", "-c",
        f"cd /tmp && {nest} && echo payload > hidden && touch /ready && exec sleep 600",
    ).strip()  # fmt: skip
    deadline = time.monotonic() + 60
    while pq("exec", cid, "test", "-e", "/ready").returncode != 0:
        assert time.monotonic() < deadline, "the container never nested its tree"
        time.sleep(0.05)
    for state in ("running", "stopped"):
        if state == "stopped":
            pq.ok("stop", "-t", "0", cid)
        out = tmp_path / f"export-{state}.tar"
        pq.ok("export", "-o", str(out), cid, timeout=300)
        with tarfile.open(out) as tar:
            hidden = [m.name for m in tar.getmembers() if m.name.endswith("/hidden")]
        assert len(hidden) == 1, (
            f"the nested file is missing from the export of a {state} container"
        )
        assert hidden[0].count("/d") == 400
