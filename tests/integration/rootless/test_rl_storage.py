"""A rootless engine's storage: layers unpacked with their owners shifted into
the user's subordinate range (whiteouts and opaque directories working in an
overlay mounted inside its user namespace), pull and push through the local
registry, save equal to root's in every member's bytes, load, build (its layer
owners unshifted), cp and export."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.oci_build import Layer, TarBuilder, busybox_layer, image_from_layers, push_image
from support.registry import Registry, start_registry
from support.rootless_cli import TEST_USER, UserPortique, subuid_start, wait_for

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("reg"), "plain") as registry:
        owned = TarBuilder().dir("home").dir("home/u", uid=1000, gid=1000)
        owned.file("home/u/f", b"owned\n", uid=1000, gid=1000)
        owned.dir("etc/keep").file("etc/keep/a", b"a\n").file("etc/keep/b", b"b\n")
        hide = TarBuilder().dir("etc/keep").opaque("etc/keep").file("etc/keep/c", b"c\n")
        hide.dir("home").dir("home/u", uid=1000, gid=1000).whiteout("home/u/f")
        layers = [busybox_layer(), Layer.build(owned), Layer.build(hide)]
        push_image(registry, "rl", "1", image_from_layers(layers, cmd=["/bin/sh"]))
        yield registry


def _members(archive: bytes) -> dict[str, str]:
    """Every regular member's name and content digest."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for m in tar:
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_pull_shifts_owners_and_the_overlay_works(upq: UserPortique, reg: Registry) -> None:
    ref = f"{reg.host}/rl:1"
    upq.ok("pull", ref, timeout=180)
    out = upq.ok(
        "run",
        "--rm",
        "--network",
        "none",
        ref,
        "sh",
        "-c",
        "stat -c %u:%g /home/u; ls /etc/keep; ls /home/u | wc -l",
    )
    assert out.split() == ["1000:1000", "c", "0"]
    shifted = subuid_start(TEST_USER) + 999
    owners = {os.stat(d, follow_symlinks=False).st_uid for d in upq.root.glob("snapshots/*/home/u")}
    assert owners == {shifted}


def test_save_equals_roots_and_load_round_trips(
    upq: UserPortique, root_pq: Portique, reg: Registry, tmp_path: Path
) -> None:
    ref = f"{reg.host}/rl:1"
    upq.ok("pull", ref, timeout=180)
    root_pq.ok("pull", ref, timeout=180)
    user_tar = upq.base / "rl.tar"
    upq.ok("save", "-o", str(user_tar), ref, timeout=180)
    root_tar = tmp_path / "rl.tar"
    root_pq.ok("save", "-o", str(root_tar), ref, timeout=180)
    mine, roots = _members(user_tar.read_bytes()), _members(root_tar.read_bytes())
    assert mine == roots
    assert len(mine) >= 5  # manifest, config, three layers
    upq.ok("rmi", ref)
    upq.ok("load", "-i", str(user_tar), timeout=180)
    out = upq.ok("run", "--rm", "--network", "none", ref, "stat", "-c", "%u", "/home/u")
    assert out.strip() == "1000"


def test_push_from_the_user_root_pulls_it(
    upq: UserPortique, root_pq: Portique, reg: Registry
) -> None:
    pushed = f"{reg.host}/rl-pushed:1"
    upq.ok("tag", "busybox", pushed)
    upq.ok("push", pushed, timeout=180)
    root_pq.ok("pull", pushed, timeout=180)
    assert root_pq.ok("run", "--rm", "--network", "none", pushed, "echo", "hi") == "hi\n"
    root_pq.ok("rmi", pushed)


def _run_layer(engine: UserPortique | Portique, tag: str, where: Path) -> list[tuple[object, ...]]:
    """(name, uid, gid, mode, content digest) of the last layer of `tag`."""
    archive = where / f"{tag.replace(':', '-')}.tar"
    engine.ok("save", "-o", str(archive), tag, timeout=180)
    with tarfile.open(archive) as outer:
        manifest = outer.extractfile("manifest.json")
        assert manifest is not None
        import json

        last = json.load(manifest)[0]["Layers"][-1]
        inner = outer.extractfile(last)
        assert inner is not None
        rows = []
        with tarfile.open(fileobj=io.BytesIO(inner.read())) as layer:
            for m in layer:
                data = b""
                if m.isfile():
                    f = layer.extractfile(m)
                    assert f is not None
                    data = f.read()
                rows.append((m.name, m.uid, m.gid, m.mode, hashlib.sha256(data).hexdigest()))
    return sorted(rows)


def test_build_gives_layers_with_unshifted_owners(
    upq: UserPortique, root_pq: Portique, tmp_path: Path
) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir -p /d/sub && echo hi > /d/f && chown -R 1000:1000 /d"
        " && chmod 0750 /d/sub && rm -rf /tmp/* \n"
        "COPY note /d/note\n"
    )
    for ctx in (upq.base / "ctx", tmp_path / "ctx"):
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(dockerfile)
        (ctx / "note").write_text("copied\n")
    for f in (upq.base / "ctx", upq.base / "ctx/Dockerfile", upq.base / "ctx/note"):
        upq.give(f)
    upq.ok("build", "-t", "built:1", str(upq.base / "ctx"), timeout=300)
    root_pq.ok("build", "-t", "built:1", str(tmp_path / "ctx"), timeout=300)
    out = upq.ok("run", "--rm", "--network", "none", "built:1", "stat", "-c", "%u:%g", "/d/f")
    assert out.strip() == "1000:1000"
    mine = _run_layer(upq, "built:1", upq.base)
    assert ("d/note", 0, 0, 0o644, hashlib.sha256(b"copied\n").hexdigest()) in mine
    roots = _run_layer(root_pq, "built:1", tmp_path)
    assert [r[:4] for r in mine] == [r[:4] for r in roots]
    assert mine == roots


def test_cp_and_export_keep_the_images_owners(upq: UserPortique) -> None:
    cid = upq.ok("create", "--network", "none", "busybox", "true").strip()
    src = upq.base / "in.txt"
    src.write_text("into the container\n")
    upq.give(src)
    try:
        upq.ok("cp", str(src), f"{cid}:/root/in.txt")
        (upq.base / "out").mkdir()
        out_dir = upq.give(upq.base / "out")
        upq.ok("cp", f"{cid}:/root/in.txt", str(out_dir / "back.txt"))
        assert (out_dir / "back.txt").read_text() == "into the container\n"
        assert os.stat(out_dir / "back.txt").st_uid == upq.uid
        exported = upq.base / "export.tar"
        upq.ok("export", "-o", str(exported), cid)
        with tarfile.open(exported) as tar:
            busybox = tar.getmember("bin/busybox")
            copied = tar.getmember("root/in.txt")
        assert (busybox.uid, busybox.gid) == (0, 0)
        assert (copied.uid, copied.gid) == (0, 0)
    finally:
        upq.ok("rm", "-f", cid)


def test_fuse_overlayfs_driver_gives_the_same_trees_and_layers(
    upq: UserPortique, reg: Registry
) -> None:
    ref = f"{reg.host}/rl:1"
    fuse = UserPortique.make(TEST_USER, "fuse")
    try:
        driver = fuse.base / "data" / "portique" / "storage-driver"
        driver.parent.mkdir(mode=0o700)
        fuse.give(driver.parent)
        driver.write_text("fuse-overlayfs\n")
        fuse.give(driver)
        fuse.ok("pull", ref, timeout=180)
        script = "head -1 /proc/self/mountinfo; stat -c %u:%g /home/u; ls /etc/keep; ls /home/u"
        out = fuse.ok("run", "--rm", "--network", "none", ref, "sh", "-c", script)
        first, *rest = out.splitlines()
        assert "fuse.fuse-overlayfs" in first
        assert rest == ["1000:1000", "c"]
        # A RUN step's whiteout and opaque directory, as the kernel's overlay gives them.
        dockerfile = (
            f"FROM {ref}\n"
            "RUN rm /bin/true && rm -rf /etc/keep && mkdir /etc/keep && echo d > /etc/keep/d\n"
        )
        for engine in (fuse, upq):
            ctx = engine.base / "fctx"
            ctx.mkdir(exist_ok=True)
            (ctx / "Dockerfile").write_text(dockerfile)
            engine.give(ctx)
            engine.give(ctx / "Dockerfile")
        upq.ok("pull", ref, timeout=180)
        fuse.ok("build", "-t", "fused:1", str(fuse.base / "fctx"), timeout=300)
        upq.ok("build", "-t", "fused:1", str(upq.base / "fctx"), timeout=300)
        fused, native = _run_layer(fuse, "fused:1", fuse.base), _run_layer(upq, "fused:1", upq.base)
        names = [row[0] for row in fused]
        assert "bin/.wh.true" in names
        assert "etc/keep/.wh..wh..opq" in names
        assert fused == native
        assert not subprocess_pids(fuse.uid, "fuse-overlayfs") or wait_for(
            lambda: not subprocess_pids(fuse.uid, "fuse-overlayfs"), timeout=30
        )
        # An unknown driver is one line.
        driver.write_text("zfs\n")
        p = fuse("run", "--rm", "--network", "none", ref, "true")
        assert p.returncode == 125
        assert "unknown storage driver 'zfs'" in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    finally:
        fuse.close()
        upq("rmi", "fused:1")


def subprocess_pids(uid: int, comm: str) -> list[int]:
    """Processes of `uid` named `comm` (the helpers a container left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid and (entry / "comm").read_text().strip() == comm:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
