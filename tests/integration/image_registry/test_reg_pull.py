"""Pull and push through the library against a real docker-registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.image.credentials import Credentials
from portique.image.images import Images
from portique.image.pull import ProgressEvent, pull, pull_image, push
from portique.image.push import push_image
from portique.image.registry.client import RegistryClient
from portique.oci import image as oci
from portique.oci.digest import DigestMismatch
from portique.oci.reference import parse_reference
from support import oci_build as ob
from support.registry import Registry, RegistryProxy

MakeClient = Callable[..., RegistryClient]


def anonymous() -> RegistryClient:
    return RegistryClient(credentials=Credentials.none())


def store_is_sound(images: Images) -> None:
    """Every blob the store trusts hashes to its name."""
    for digest in images.store.digests():
        with images.store.open(digest) as f:
            h = hashlib.sha256()
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == digest


def test_anonymous_pull(registry_plain: Registry, images: Images, repo_name: str) -> None:
    img = ob.whiteout_image()
    ob.push_image(registry_plain, repo_name, "v1", img)
    events: list[ProgressEvent] = []
    result = pull_image(
        images, f"{registry_plain.host}/{repo_name}:v1", progress=events.append, client=anonymous()
    )
    rec = result.record
    assert result.downloaded
    assert result.digest == rec.manifest_digest == img.manifest_digest
    assert rec.id == img.config_digest
    assert rec.layers == img.diff_ids
    assert rec.repo_tags == [f"{registry_plain.host}/{repo_name}:v1"]
    assert rec.repo_digests == [f"{registry_plain.host}/{repo_name}@{img.manifest_digest}"]
    for desc in img.layers:
        assert images.store.has(desc.digest)
    store_is_sound(images)
    # The snapshots hold the layers' content (whiteouts as overlay whiteouts).
    top = rec.snapshot_dirs[-1]
    assert (top / "opq/new").read_bytes() == b"new\n"
    assert (rec.snapshot_dirs[0] / "bin/busybox").stat().st_size > 100_000
    statuses = {(e.id, e.status) for e in events}
    for layer in img.layers:
        sid = layer.digest[7:19]
        assert (sid, "Download complete") in statuses
        assert (sid, "Pull complete") in statuses
    # Again: nothing is fetched, the image is up to date.
    before = len(registry_plain.requests())
    again = pull_image(images, f"{registry_plain.host}/{repo_name}:v1", client=anonymous())
    assert not again.downloaded
    assert again.record.id == rec.id
    blob_gets = [r for r in registry_plain.requests()[before:] if "/blobs/" in r[1]]
    assert blob_gets == []


def test_pull_docker_schema2_and_zstd(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    docker = ob.busybox_image(flavour="docker")
    zstd = ob.busybox_image(compression="zstd")
    ob.push_image(registry_plain, repo_name, "docker", docker)
    ob.push_image(registry_plain, repo_name, "zstd", zstd)
    a = pull(images, f"{registry_plain.host}/{repo_name}:docker", client=anonymous())
    b = pull(images, f"{registry_plain.host}/{repo_name}:zstd", client=anonymous())
    assert a.manifest_media_type == oci.MEDIA_TYPE_DOCKER_MANIFEST
    # Same tar, so the same diff_id and one snapshot, whatever the compression.
    assert a.layers == b.layers
    assert a.snapshot_dirs == b.snapshot_dirs


@pytest.mark.parametrize("flavour", ["oci", "docker"])
def test_index_platform_selection(
    registry_token: Registry, make_client: MakeClient, images: Images, repo_name: str, flavour: str
) -> None:
    idx = ob.multiarch_index(flavour)
    ob.push_index(registry_token, repo_name, "latest", idx)
    amd64, arm64 = idx.images
    name = f"{registry_token.host}/{repo_name}"
    rec = pull_image(images, name, client=make_client(registry_token))
    assert rec.manifest_digest == amd64.manifest_digest
    assert rec.digest == idx.digest  # the digest to pull by is the index's
    assert rec.record.architecture == "amd64"
    assert (rec.record.snapshot_dirs[-1] / "etc/arch").read_text() == "amd64\n"
    arm = pull_image(images, name, platform="linux/arm64", client=make_client(registry_token))
    assert arm.manifest_digest == arm64.manifest_digest
    assert arm.record.architecture == "arm64"
    with pytest.raises(Exception, match="no matching manifest for linux/s390x"):
        pull(images, name, platform="linux/s390x", client=make_client(registry_token))


def test_single_platform_mismatch_with_explicit_platform(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    ob.push_image(registry_plain, repo_name, "arm", ob.busybox_image(architecture="arm64"))
    name = f"{registry_plain.host}/{repo_name}:arm"
    with pytest.raises(Exception, match="does not match the specified platform"):
        pull(images, name, platform="linux/amd64", client=anonymous())
    assert pull(images, name, client=anonymous()).architecture == "arm64"


def test_tampered_blob_fails_and_nothing_is_trusted(
    fresh_registry: Callable[..., Registry], images: Images
) -> None:
    reg = fresh_registry("plain")
    img = ob.whiteout_image()
    ob.push_image(reg, "tamper", "v1", img)
    bad = img.layers[1]
    ob.corrupt(reg.blob_path(bad.digest))
    with pytest.raises(DigestMismatch, match=f"blob {bad.digest}.*content hashes to"):
        pull(images, f"{reg.host}/tamper:v1", client=anonymous())
    assert not images.store.has(bad.digest)
    # The mismatching download is discarded, not kept for a resume.
    assert not (images.store.ingest_dir / f"{bad.digest.replace(':', '-')}.part").exists()
    store_is_sound(images)
    assert not images.exists(f"{reg.host}/tamper:v1")


def test_wrong_media_types_are_refused(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    # An artifact (a config that is not an image config) is not an image.
    base = ob.busybox_image()
    manifest = json.loads(base.manifest)
    manifest["config"]["mediaType"] = "application/vnd.example.artifact+json"
    data = json.dumps(manifest).encode()
    for digest, blob in base.blobs():
        ob.push_blob(registry_plain, repo_name, digest, blob)
    ob.put_manifest(registry_plain, repo_name, "artifact", data, oci.MEDIA_TYPE_OCI_MANIFEST)
    with pytest.raises(oci.InvalidManifest, match="is not an image config"):
        pull(images, f"{registry_plain.host}/{repo_name}:artifact", client=anonymous())
    # A layer of an unknown media type.
    manifest = json.loads(base.manifest)
    manifest["layers"][0]["mediaType"] = "application/vnd.example.helm.chart"
    ob.put_manifest(
        registry_plain,
        repo_name,
        "helm",
        json.dumps(manifest).encode(),
        oci.MEDIA_TYPE_OCI_MANIFEST,
    )
    with pytest.raises(oci.InvalidManifest, match="unsupported media type"):
        pull(images, f"{registry_plain.host}/{repo_name}:helm", client=anonymous())
    # A registry that serves the manifest as something else.
    ob.push_image(registry_plain, repo_name, "ok", base)
    proxy = RegistryProxy(registry_plain.url, manifest_content_type="text/html").start()
    try:
        with pytest.raises(oci.InvalidManifest, match="unsupported media type 'text/html'"):
            pull(images, f"{proxy.host}/{repo_name}:ok", client=anonymous())
    finally:
        proxy.stop()
    assert list(images.store.digests()) == []


def test_dropped_connection_resumes_with_range(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    img = ob.random_image(layers=2, layer_size=3 << 20, seed=7)
    ob.push_image(registry_plain, repo_name, "v1", img)
    proxy = RegistryProxy(registry_plain.url, cut_blobs=2, cut_after=1 << 20).start()
    try:
        rec = pull(images, f"{proxy.host}/{repo_name}:v1", client=anonymous())
    finally:
        proxy.stop()
    assert rec.manifest_digest == img.manifest_digest
    ranges = [r.headers.get("Range") for r in proxy.requests if "/blobs/" in r.path]
    assert ranges.count("bytes=1048576-") == 2
    store_is_sound(images)


def test_transient_errors_are_retried(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "v1", img)
    proxy = RegistryProxy(registry_plain.url, fail_next=3, fail_status=502).start()
    try:
        assert (
            pull(images, f"{proxy.host}/{repo_name}:v1", client=anonymous()).id == img.config_digest
        )
    finally:
        proxy.stop()


def test_push_to_second_registry_keeps_digests(
    registry_token: Registry,
    registry_basic: Registry,
    make_client: MakeClient,
    images: Images,
    tmp_path: Path,
    repo_name: str,
) -> None:
    img = ob.whiteout_image()
    ob.push_image(registry_token, repo_name, "v1", img)
    src = f"{registry_token.host}/{repo_name}:v1"
    rec = pull(images, src, client=make_client(registry_token))
    dest = f"{registry_basic.host}/{repo_name}-copy:v2"
    images.tag(src, dest)
    result = push_image(images, dest, client=make_client(registry_basic))
    assert result.digest == img.manifest_digest
    assert (
        f"{registry_basic.host}/{repo_name}-copy@{img.manifest_digest}"
        in images.resolve(dest).repo_digests
    )
    # Pull it back into a fresh store: same manifest, config and layers.
    other = Images(tmp_path / "other-root")
    try:
        back = pull(other, dest, client=make_client(registry_basic))
        assert (back.id, back.manifest_digest, back.layers) == (
            rec.id,
            rec.manifest_digest,
            rec.layers,
        )
    finally:
        other.close()
    # An outside client sees the same digest.
    out = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--creds",
            "testuser:testpassword",
            f"docker://{dest}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["Digest"] == img.manifest_digest
    # Pushing again uploads nothing.
    before = len(registry_basic.requests())
    events: list[ProgressEvent] = []
    push_image(images, dest, client=make_client(registry_basic), progress=events.append)
    assert not [r for r in registry_basic.requests()[before:] if r[0] in ("PATCH", "POST")]
    assert {e.status for e in events if e.id} == {"Preparing", "Layer already exists"}


def test_push_mounts_across_repositories(
    registry_token: Registry, make_client: MakeClient, images: Images, repo_name: str
) -> None:
    img = ob.whiteout_image()
    ob.push_image(registry_token, repo_name, "v1", img)
    src = f"{registry_token.host}/{repo_name}:v1"
    pull(images, src, client=make_client(registry_token))
    dest = f"{registry_token.host}/{repo_name}-mounted:v1"
    images.tag(src, dest)
    before = len(registry_token.requests())
    events: list[ProgressEvent] = []
    digest = push(images, dest, client=make_client(registry_token), progress=events.append)
    assert digest == img.manifest_digest
    new = registry_token.requests()[before:]
    assert not [r for r in new if r[0] in ("PUT", "PATCH") and "/blobs/" in r[1]]
    mounted = [e for e in events if e.status == f"Mounted from {repo_name}"]
    assert len(mounted) == len(img.layers)


def test_chunked_push(
    registry_plain: Registry,
    registry_token: Registry,
    make_client: MakeClient,
    images: Images,
    repo_name: str,
) -> None:
    img = ob.random_image(layers=1, layer_size=600_000, seed=3)
    ob.push_image(registry_plain, repo_name, "v1", img)
    src = f"{registry_plain.host}/{repo_name}:v1"
    pull(images, src, client=anonymous())
    # Another registry, so nothing can be mounted: every blob is uploaded.
    dest = f"{registry_token.host}/{repo_name}-chunked:v1"
    images.tag(src, dest)
    before = len(registry_token.requests())
    client = make_client(registry_token)
    push_image(images, dest, client=client, chunk_size=200_000)
    patches = [r for r in registry_token.requests()[before:] if r[0] == "PATCH"]
    layer_size = len(img.layers[0].blob)
    config_size = len(img.config)
    assert len(patches) == -(-layer_size // 200_000) + -(-config_size // 200_000)
    assert client.get_manifest(parse_reference(dest))[2] == img.manifest_digest


def test_corrupt_partial_is_discarded_and_refetched(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    img = ob.random_image(layers=1, layer_size=1 << 20, seed=21)
    ob.push_image(registry_plain, repo_name, "v1", img)
    layer = img.layers[0]
    # A partial whose prefix is wrong (a bad disk, another program): the resume
    # fails verification, and the pull starts that blob over instead of failing.
    partial = images.store.ingest_dir / f"{layer.digest.replace(':', '-')}.part"
    partial.write_bytes(b"\0" * 1000)
    rec = pull(images, f"{registry_plain.host}/{repo_name}:v1", client=anonymous())
    assert rec.layers == img.diff_ids
    assert not partial.exists()
    store_is_sound(images)


def test_manifest_size_lies_are_refused(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    img = ob.random_image(layers=1, layer_size=200_000, seed=22)
    manifest = json.loads(img.manifest)
    manifest["layers"][0]["size"] -= 100  # the blob is larger than announced
    data = json.dumps(manifest).encode()
    for digest, blob in img.blobs():
        ob.push_blob(registry_plain, repo_name, digest, blob)
    ob.put_manifest(registry_plain, repo_name, "liar", data, oci.MEDIA_TYPE_OCI_MANIFEST)
    with pytest.raises(DigestMismatch, match="manifest says"):
        pull(images, f"{registry_plain.host}/{repo_name}:liar", client=anonymous())
    assert not images.store.has(img.layers[0].digest)


def test_layer_listed_twice_is_fetched_once(
    fresh_registry: Callable[..., Registry], images: Images
) -> None:
    reg = fresh_registry("plain")
    base = ob.busybox_layer()
    extra = ob.Layer.build(ob.TarBuilder().dir("etc").file("etc/x", b"x\n"))
    img = ob.image_from_layers([base, extra, base], cmd=["/bin/sh"])
    ob.push_image(reg, "twice", "v1", img)
    before = len(reg.requests())
    rec = pull(images, f"{reg.host}/twice:v1", client=anonymous())
    assert rec.layers == img.diff_ids
    assert len(rec.snapshot_dirs) == 3
    gets = [p for m, p, s in reg.requests()[before:] if m == "GET" and base.digest in p]
    assert len(gets) == 1


def test_config_checked_while_layers_download(
    registry_plain: Registry, images: Images, repo_name: str
) -> None:
    # A config listing fewer diff_ids than the manifest has layers: refused, not registered.
    good = ob.whiteout_image()
    bad_config = json.loads(good.config)
    bad_config["rootfs"]["diff_ids"] = bad_config["rootfs"]["diff_ids"][:1]
    config = json.dumps(bad_config).encode()
    manifest = json.loads(good.manifest)
    manifest["config"].update(digest=ob.sha256(config), size=len(config))
    for digest, blob in [(ob.sha256(config), config), *good.blobs()[1:]]:
        ob.push_blob(registry_plain, repo_name, digest, blob)
    ob.put_manifest(
        registry_plain, repo_name, "bad", json.dumps(manifest).encode(), oci.MEDIA_TYPE_OCI_MANIFEST
    )
    with pytest.raises(oci.InvalidManifest, match="3 layers but 1 diff_ids"):
        pull(images, f"{registry_plain.host}/{repo_name}:bad", client=anonymous())
    assert images.list() == []


def test_image_without_layers(registry_plain: Registry, images: Images, repo_name: str) -> None:
    img = ob.image_from_layers([], cmd=["/bin/true"])
    ob.push_image(registry_plain, repo_name, "empty", img)
    rec = pull(images, f"{registry_plain.host}/{repo_name}:empty", client=anonymous())
    assert (rec.id, rec.layers) == (img.config_digest, [])
