"""The Images facade over a real SQLite file and real directories (no root)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from portique.errors import Conflict, InvalidArgument, NotFound
from portique.image.images import ImageRecord, Images, chain_ids
from portique.image.unpack import InvalidLayer
from portique.oci.digest import DigestMismatch
from support import oci_build as ob
from support.imgstore_tars import Desc, RawTar, compress


def layer(name: str, data: bytes = b"", compression: ob.Compression = "gzip") -> ob.Layer:
    tb = ob.TarBuilder().dir("data").file(f"data/{name}", data or name.encode())
    return ob.Layer.build(tb, compression)


BASE = layer("base", b"base layer")
MID = layer("mid")
TOP_A = layer("a")
TOP_B = layer("b")


def put(imgs: Images, img: ob.BuiltImage) -> None:
    for digest, data in img.blobs():
        imgs.store.write_bytes(data, digest)


def add(
    imgs: Images, img: ob.BuiltImage, *tags: str, repo_digest: str | None = None
) -> ImageRecord:
    put(imgs, img)
    return imgs.register(
        img.manifest, img.manifest_digest, img.config, tags=list(tags), repo_digest=repo_digest
    )


@pytest.fixture
def imgs(tmp_path: Path) -> Images:
    return Images(tmp_path / "root")


def all_files(root: Path) -> set[str]:
    skip = {"portique.db", "portique.db-wal", "portique.db-shm"}
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in skip}


def test_register_records_everything(imgs: Images) -> None:
    img = ob.image_from_layers([BASE, MID], cmd=["/bin/sh"], env=["A=1"])
    rec = add(imgs, img, "example.com/app:1", repo_digest="example.com/app")
    assert rec.id == img.config_digest
    assert rec.repo_tags == ["example.com/app:1"]
    assert rec.repo_digests == [f"example.com/app@{img.manifest_digest}"]
    assert rec.manifest_digest == img.manifest_digest
    assert rec.config["config"]["Cmd"] == ["/bin/sh"]
    assert rec.layers == img.diff_ids
    assert rec.chain_ids == chain_ids(img.diff_ids)
    assert rec.chain_ids[0] == img.diff_ids[0]
    assert len(rec.chain_ids) == 2
    assert rec.size == len(b"base layer") + len(b"mid")
    assert (rec.snapshot_dirs[0] / "data/base").read_bytes() == b"base layer"
    assert (rec.snapshot_dirs[1] / "data/mid").read_bytes() == b"mid"
    assert imgs.lowerdirs(rec) == rec.snapshot_dirs[::-1]
    assert (rec.architecture, rec.os, rec.created) == ("amd64", "linux", "2023-11-14T22:13:20Z")
    # Registering again is idempotent.
    assert add(imgs, img, "example.com/app:1").id == rec.id
    assert len(imgs.list()) == 1


def test_docker_hub_names_are_normalised_and_shown_familiar(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([BASE]), "busybox", "docker.io/library/busybox:1.36")
    assert sorted(rec.repo_tags) == ["busybox:1.36", "busybox:latest"]
    assert imgs.resolve("docker.io/library/busybox:latest").id == rec.id
    assert imgs.resolve("index.docker.io/library/busybox").id == rec.id


def test_resolve_by_tag_id_prefix_and_digest(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    rec = add(imgs, img, "app:v1", repo_digest="app")
    hexid = rec.id[7:]
    for name in (rec.id, hexid, hexid[:12], hexid[:3], "sha256:" + hexid[:10], "app:v1"):
        assert imgs.resolve(name).id == rec.id, name
    assert imgs.resolve(f"app@{img.manifest_digest}").id == rec.id
    assert imgs.resolve(f"docker.io/library/app@{img.manifest_digest}").id == rec.id
    for missing in ("app:v2", "other", "0" * 12, "sha256:" + "0" * 64, "Not/Valid!"):
        with pytest.raises(NotFound, match="no such image"):
            imgs.resolve(missing)


def test_ambiguous_prefix(imgs: Images) -> None:
    a = add(imgs, ob.image_from_layers([BASE], cmd=["a"]))
    # Find a second image whose id shares the first hex digit.
    for i in range(64):
        b = ob.image_from_layers([BASE], cmd=[f"b{i}"])
        if b.config_digest[7] == a.id[7]:
            add(imgs, b)
            break
    with pytest.raises(InvalidArgument, match="ambiguous"):
        imgs.resolve(a.id[7])


def test_retag_leaves_previous_image_dangling(imgs: Images) -> None:
    old = add(imgs, ob.image_from_layers([BASE, TOP_A]), "app:latest")
    new = add(imgs, ob.image_from_layers([BASE, TOP_B]), "app:latest")
    assert imgs.get(old.id).repo_tags == []
    assert imgs.get(new.id).repo_tags == ["app:latest"]
    assert [r.id for r in imgs.list(dangling=True)] == [old.id]
    assert [r.id for r in imgs.list(dangling=False)] == [new.id]
    assert {r.id for r in imgs.list()} == {old.id, new.id}


def test_tag(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([BASE]), "app:1")
    imgs.tag("app:1", "localhost:5000/team/app:2")
    imgs.tag(rec.id[7:19], "app:3")
    assert sorted(imgs.get(rec.id).repo_tags) == ["app:1", "app:3", "localhost:5000/team/app:2"]
    with pytest.raises(NotFound):
        imgs.tag("nope", "x")
    with pytest.raises(InvalidArgument):
        imgs.tag("app:1", "UPPER:case")


def test_remove_by_tag_untags_until_last(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    rec = add(imgs, img, "app:1", "app:2", repo_digest="app")
    assert imgs.remove("app:1") == [("Untagged", "app:1")]
    out = imgs.remove("app:2")
    assert out == [
        ("Untagged", "app:2"),
        ("Untagged", f"app@{img.manifest_digest}"),
        ("Deleted", rec.id),
    ]
    with pytest.raises(NotFound):
        imgs.get(rec.id)
    assert all_files(imgs.root) == set()
    assert sorted(os.listdir(imgs.snapshots.dir)) == ["empty", "locks"]


def test_remove_keeps_shared_layers_and_blobs(imgs: Images) -> None:
    a = add(imgs, ob.image_from_layers([BASE, TOP_A]), "a")
    b = add(imgs, ob.image_from_layers([BASE, TOP_B]), "b")
    assert a.snapshot_dirs[0] == b.snapshot_dirs[0]  # the base is unpacked once
    imgs.remove("a")
    assert a.snapshot_dirs[0].is_dir()
    assert not a.snapshot_dirs[1].exists()
    assert imgs.store.has(BASE.digest)
    assert not imgs.store.has(TOP_A.digest)
    assert imgs.resolve("b").snapshot_dirs == b.snapshot_dirs
    imgs.remove(b.id)
    assert not b.snapshot_dirs[0].exists()
    assert all_files(imgs.root) == set()


def test_remove_by_id_with_several_repositories_needs_force(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([BASE]), "one:1", "two:1")
    with pytest.raises(Conflict, match="multiple repositories"):
        imgs.remove(rec.id[7:19])
    out = imgs.remove(rec.id[7:19], force=True)
    assert out[-1] == ("Deleted", rec.id)
    assert {x[1] for x in out[:-1]} == {"one:1", "two:1"}


def test_images_used_by_containers(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([BASE]), "app")
    cid = "c" * 64
    imgs.add_user(rec.id, cid)
    with pytest.raises(Conflict, match="being used by container cccccccccccc"):
        imgs.remove(rec.id)
    with pytest.raises(Conflict, match="must force"):
        imgs.remove("app")
    assert imgs.resolve("app").id == rec.id  # the refused untag was rolled back
    # Forced too: an rmi that succeeds has removed the image, and this one cannot
    # be (its snapshots are the container's lower dirs): refused, nothing changed.
    with pytest.raises(Conflict, match=r"cannot be forced.*container cccccccccccc"):
        imgs.remove("app", force=True)
    with pytest.raises(Conflict, match=r"cannot be forced.*container cccccccccccc"):
        imgs.remove(rec.id, force=True)
    assert imgs.resolve("app").id == rec.id
    assert imgs.get(rec.id).snapshot_dirs[0].is_dir()
    assert imgs.prune() == ([], 0)
    assert imgs.prune(all=True)[0] == []
    assert imgs.disk_usage()["active"] == 1
    imgs.remove_user(rec.id, cid)
    deleted, reclaimed = imgs.prune(all=True)
    assert deleted == [rec.id]
    assert reclaimed >= len(b"base layer")
    with pytest.raises(NotFound):
        imgs.add_user(rec.id, cid)


def test_prune_dangling_and_all(imgs: Images) -> None:
    old = add(imgs, ob.image_from_layers([BASE, TOP_A]), "app")
    new = add(imgs, ob.image_from_layers([BASE, TOP_B]), "app")
    kept = add(imgs, ob.image_from_layers([MID]), "kept")
    deleted, reclaimed = imgs.prune()
    assert deleted == [old.id]
    assert reclaimed >= len(b"a")
    assert not old.snapshot_dirs[1].exists()
    assert new.snapshot_dirs[0].is_dir()
    imgs.add_user(kept.id, "k" * 64)
    deleted, _ = imgs.prune(all=True)
    assert deleted == [new.id]
    assert [r.id for r in imgs.list()] == [kept.id]


def test_parent_chain_pruned_with_child(imgs: Images) -> None:
    base = add(imgs, ob.image_from_layers([BASE]))
    img = ob.image_from_layers([BASE, TOP_A])
    put(imgs, img)
    child = imgs.register(
        img.manifest, img.manifest_digest, img.config, tags=["child"], parent=base.id
    )
    with pytest.raises(Conflict, match="dependent child"):
        imgs.remove(base.id)
    assert [r.id for r in imgs.list()] == [child.id]  # the untagged parent is hidden...
    assert {r.id for r in imgs.list(all=True)} == {base.id, child.id}  # ...unless all
    out = imgs.remove("child")
    assert ("Deleted", child.id) in out
    assert ("Deleted", base.id) in out
    assert imgs.list(all=True) == []


def test_diff_id_mismatch_is_refused(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    config = json.loads(img.config)
    config["rootfs"]["diff_ids"] = [MID.diff_id]
    bad = ob.BuiltImage(
        img.manifest, img.media_type, json.dumps(config).encode(), img.config_media_type, img.layers
    )
    manifest = json.loads(img.manifest)
    manifest["config"]["digest"] = ob.sha256(bad.config)
    manifest["config"]["size"] = len(bad.config)
    bad = ob.BuiltImage(
        json.dumps(manifest).encode(), img.media_type, bad.config, img.config_media_type, img.layers
    )
    put(imgs, bad)
    with pytest.raises(DigestMismatch, match="unpacks to"):
        imgs.register(bad.manifest, bad.manifest_digest, bad.config, tags=["bad"])
    assert imgs.list(all=True) == []


def test_config_digest_mismatch_is_refused(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    put(imgs, img)
    with pytest.raises(DigestMismatch, match="config"):
        imgs.register(img.manifest, img.manifest_digest, img.config + b" ", tags=[])
    with pytest.raises(DigestMismatch, match="manifest"):
        imgs.register(img.manifest, "sha256:" + "1" * 64, img.config, tags=[])


def test_missing_blob(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    with pytest.raises(NotFound, match="no such blob"):
        imgs.register(img.manifest, img.manifest_digest, img.config, tags=[])


def test_bad_layer_leaves_no_snapshot_dir(imgs: Images) -> None:
    blob = compress(RawTar().file("ok", b"1").file("../../evil", b"x").bytes(), "gzip")
    imgs.store.write_bytes(blob)
    with pytest.raises(InvalidLayer, match=r"layer sha256:.*'\.\./\.\./evil'"):
        imgs.unpack_layer(Desc.of(blob))
    assert sorted(os.listdir(imgs.snapshots.dir)) == ["empty", "locks"]
    assert os.listdir(imgs.snapshots.locks) == []


def test_same_content_in_two_compressions_is_unpacked_once(imgs: Images) -> None:
    tb_tar = ob.TarBuilder().file("f", b"same").tar_bytes()
    gz, zst = ob.Layer.from_tar(tb_tar, "gzip"), ob.Layer.from_tar(tb_tar, "zstd")
    for x in (gz, zst):
        imgs.store.write_bytes(x.blob, x.digest)
    p1 = imgs.unpack_layer(Desc(gz.digest, gz.media_type, len(gz.blob)))
    p2 = imgs.unpack_layer(Desc(zst.digest, zst.media_type, len(zst.blob)))
    assert p1 == p2
    assert imgs.diff_id_of(gz.digest) == imgs.diff_id_of(zst.digest) == gz.diff_id


def test_parallel_and_concurrent_unpack(imgs: Images) -> None:
    layers = [layer(f"l{i}", os.urandom(200_000)) for i in range(6)]
    for x in layers:
        imgs.store.write_bytes(x.blob, x.digest)
    descs = [Desc(x.digest, x.media_type, len(x.blob)) for x in layers]
    results: list[list[Path]] = []
    threads = [
        threading.Thread(target=lambda: results.append(imgs.unpack_layers(descs))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3
    assert results[0] == results[1] == results[2]
    assert len(set(results[0])) == 6
    assert [imgs.diff_id_of(d.digest) for d in descs] == [x.diff_id for x in layers]
    assert len(imgs.db.layer_ids()) == 6


def test_two_processes_share_one_database(tmp_path: Path) -> None:
    a, b = Images(tmp_path), Images(tmp_path)
    rec = add(a, ob.image_from_layers([BASE]), "shared")
    assert b.resolve("shared").id == rec.id
    b.remove("shared")
    with pytest.raises(NotFound):
        a.resolve("shared")


def test_empty_image(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([]), "scratch")
    assert rec.layers == []
    assert rec.snapshot_dirs == []
    assert rec.size == 0
    assert imgs.lowerdirs(rec) == []


def test_crash_leftovers_are_cleaned(imgs: Images) -> None:
    stale = imgs.snapshots.dir / "tmp-deadbeef"
    (stale / "usr").mkdir(parents=True)
    orphan = imgs.snapshots.dir / "999"
    orphan.mkdir()
    fresh = imgs.snapshots.dir / "tmp-fresh"
    fresh.mkdir()
    old = time.time() - 7200
    for p in (stale, orphan):
        os.utime(p, (old, old))
    imgs.clean_stale()
    assert not stale.exists()
    assert not orphan.exists()
    assert fresh.exists()  # may be an unpack in progress


def test_disk_usage(imgs: Images) -> None:
    add(imgs, ob.image_from_layers([BASE, TOP_A]), "a")
    add(imgs, ob.image_from_layers([BASE, TOP_B]), "b")
    du = imgs.disk_usage()
    assert du["images"] == 2
    assert du["active"] == 0
    assert du["size"] == len(b"base layer") + 2
    assert du["reclaimable"] == du["size"]
    assert du["blobs"] == sum(imgs.store.size(d) for d in imgs.store.digests())
    assert du["blobs"] > 0


def test_lost_snapshot_dir_is_repaired(imgs: Images) -> None:
    rec = add(imgs, ob.image_from_layers([BASE, MID]), "app")
    shutil.rmtree(rec.snapshot_dirs[1])
    path = imgs.unpack_layer(Desc(MID.digest, MID.media_type, len(MID.blob)))
    assert path == rec.snapshot_dirs[1]
    assert (path / "data/mid").read_bytes() == b"mid"


def test_opening_the_store_sweeps_old_leftovers(tmp_path: Path) -> None:
    imgs = Images(tmp_path)
    stale = imgs.snapshots.dir / "tmp-0123"
    stale.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    Images(tmp_path)  # swept recently (at creation): nothing happens
    assert stale.exists()
    os.utime(imgs.snapshots.empty, (old, old))
    Images(tmp_path)
    assert not stale.exists()


def test_remove_image_with_a_very_deep_tree(imgs: Images) -> None:
    deep = "/".join(["n"] * 1500)
    tb = ob.TarBuilder().file(f"{deep}/leaf", b"x")
    rec = add(imgs, ob.image_from_layers([ob.Layer.build(tb)]), "deep")
    assert (rec.snapshot_dirs[0] / deep / "leaf").exists()
    imgs.remove("deep")
    assert not rec.snapshot_dirs[0].exists()
    assert all_files(imgs.root) == set()


def test_clean_spares_an_old_staging_dir_whose_unpack_still_runs(imgs: Images) -> None:
    key = "sha256:" + "ab" * 32
    old = time.time() - 7200
    with imgs.snapshots.lock(key), imgs.snapshots.staging(key) as (tmp, _fd):
        os.utime(tmp, (old, old))
        imgs.clean_stale()
        assert tmp.exists()  # its lock is held: a long unpack, not a crash
    with imgs.snapshots.staging(key) as (tmp2, _fd):
        os.utime(tmp2, (old, old))
        imgs.clean_stale()
        assert not tmp2.exists()  # nobody holds the lock: a crash's leftover


def test_hostile_layer_fails_register_and_leaves_nothing(imgs: Images) -> None:
    evil = ob.Layer.from_tar(
        RawTar().file("ok", b"1").symlink("etc", "/etc").file("etc/passwd", b"x").bytes()
    )
    img = ob.image_from_layers([BASE, evil])
    put(imgs, img)
    with pytest.raises(
        InvalidLayer, match=rf"layer {evil.digest}: invalid layer entry 'etc/passwd'"
    ):
        imgs.register(img.manifest, img.manifest_digest, img.config, tags=["evil"])
    assert imgs.list(all=True) == []
    assert imgs.diff_id_of(evil.digest) is None
    # Only the good layer's snapshot exists (kept for a retry; prune sweeps it when old).
    assert [n for n in os.listdir(imgs.snapshots.dir) if n not in ("empty", "locks")] == [
        str(next(iter(imgs.db.layer_ids())))
    ]


def test_remove_by_digest_reference(imgs: Images) -> None:
    img = ob.image_from_layers([BASE])
    rec = add(imgs, img, "app:1", repo_digest="app")
    assert imgs.remove(f"app@{img.manifest_digest}") == [("Untagged", f"app@{img.manifest_digest}")]
    assert imgs.get(rec.id).repo_tags == ["app:1"]
    assert imgs.get(rec.id).repo_digests == []
    assert imgs.remove("app:1") == [("Untagged", "app:1"), ("Deleted", rec.id)]


def test_prune_sweeps_old_unreferenced_layers_and_blobs(imgs: Images) -> None:
    kept = add(imgs, ob.image_from_layers([BASE]), "kept")
    # A pull that stored and unpacked a layer but never registered its image.
    imgs.store.write_bytes(TOP_A.blob, TOP_A.digest)
    path = imgs.unpack_layer(Desc(TOP_A.digest, TOP_A.media_type, len(TOP_A.blob)))
    imgs.add_user(kept.id, "k" * 64)
    assert imgs.prune(all=True) == ([], 0)  # too fresh: may be a pull in progress
    assert path.is_dir()
    old = time.time() - 7200
    os.utime(imgs.store.path(TOP_A.digest), (old, old))
    with imgs.db.write() as c:
        c.execute("UPDATE layers SET created = ? WHERE id = ?", (old, int(path.name)))
    assert imgs.prune() == ([], 0)  # dangling-only prune keeps them (build cache)
    assert path.is_dir()
    deleted, reclaimed = imgs.prune(all=True)
    assert deleted == []
    assert reclaimed == len(b"a") + len(TOP_A.blob)
    assert not path.exists()
    assert not imgs.store.has(TOP_A.digest)
    assert imgs.diff_id_of(TOP_A.digest) is None
    assert imgs.resolve("kept").snapshot_dirs == kept.snapshot_dirs
