"""The registry client against a real docker-registry: auth modes, HEAD, uploads, mounts,
and a misbehaving front (retries, redirects, dropped connections, resumes)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.image.credentials import Credentials
from portique.image.registry.client import RegistryClient
from portique.image.registry.errors import RegistryNotFound, RegistryUnreachable, Unauthorized
from portique.oci import image as oci
from portique.oci.digest import DigestMismatch
from portique.oci.reference import parse_reference
from support import oci_build as ob
from support.registry import Registry, RegistryProxy

MakeClient = Callable[..., RegistryClient]


def anonymous() -> RegistryClient:
    return RegistryClient(credentials=Credentials.none())


@pytest.mark.parametrize("mode", ["plain", "basic", "token"])
def test_manifest_and_blobs_in_each_auth_mode(
    mode: str, request: pytest.FixtureRequest, make_client: MakeClient, repo_name: str
) -> None:
    reg: Registry = request.getfixturevalue(f"registry_{mode}")
    img = ob.busybox_image()
    ob.push_image(reg, repo_name, "latest", img)
    client = make_client(reg)
    ref = parse_reference(f"{reg.host}/{repo_name}")
    data, media_type, digest = client.get_manifest(ref)
    assert (data, media_type, digest) == (
        img.manifest,
        oci.MEDIA_TYPE_OCI_MANIFEST,
        img.manifest_digest,
    )
    assert client.head_manifest(ref) == (
        img.manifest_digest,
        oci.MEDIA_TYPE_OCI_MANIFEST,
        len(img.manifest),
    )
    assert client.fetch_blob_bytes(ref, img.config_digest, 1 << 20) == img.config
    layer = img.layers[0]
    with client.fetch_blob(ref, layer.digest) as stream:
        assert b"".join(stream) == layer.blob
    assert client.blob_exists(ref, layer.digest)
    assert not client.blob_exists(ref, "sha256:" + "0" * 64)
    with pytest.raises(RegistryNotFound, match="not found: manifest unknown"):
        client.get_manifest(ref.with_tag("nope"))
    with pytest.raises(RegistryNotFound):
        client.head_manifest(ref.with_tag("nope"))


def test_token_flow_reuses_tokens(
    registry_token: Registry, make_client: MakeClient, repo_name: str
) -> None:
    reg = registry_token
    img = ob.busybox_image()
    ob.push_image(reg, repo_name, "latest", img)
    assert reg.token_issuer is not None
    before = len(reg.token_issuer.requests)
    client = make_client(reg)
    ref = parse_reference(f"{reg.host}/{repo_name}")
    for _ in range(3):
        client.get_manifest(ref)
        assert client.blob_exists(ref, img.config_digest)
    new = reg.token_issuer.requests[before:]
    # One token for pull on this repo, fetched once, as the test user.
    assert [(r.account, r.scopes, r.status) for r in new] == [
        ("testuser", [f"repository:{repo_name}:pull"], 200)
    ]


def test_anonymous_token_pull_and_denied_push(registry_token: Registry, repo_name: str) -> None:
    reg = registry_token
    img = ob.busybox_image()
    ob.push_image(reg, repo_name, "latest", img)
    client = anonymous()
    ref = parse_reference(f"{reg.host}/{repo_name}")
    assert client.get_manifest(ref)[2] == img.manifest_digest
    blob = b"anonymous push"
    with pytest.raises(Unauthorized):
        client.upload_blob(ref, ob.sha256(blob), len(blob), io.BytesIO(blob))


def test_wrong_password(registry_basic: Registry, registry_token: Registry, repo_name: str) -> None:
    for reg in (registry_basic, registry_token):
        client = RegistryClient(credentials=Credentials({reg.host: ("testuser", "wrong")}, {}))
        ref = parse_reference(f"{reg.host}/{repo_name}")
        with pytest.raises(Unauthorized):
            client.get_manifest(ref)
        with pytest.raises(Unauthorized):
            client.ping(reg.host)
        make = RegistryClient(credentials=Credentials({reg.host: ("testuser", "testpassword")}, {}))
        make.ping(reg.host)


def test_basic_without_credentials(registry_basic: Registry, repo_name: str) -> None:
    with pytest.raises(Unauthorized, match="portique login"):
        anonymous().get_manifest(parse_reference(f"{registry_basic.host}/{repo_name}"))


@pytest.mark.parametrize("chunk_size", [None, 100_000])
def test_upload_monolithic_and_chunked(
    registry_token: Registry, make_client: MakeClient, repo_name: str, chunk_size: int | None
) -> None:
    reg = registry_token
    client = make_client(reg)
    ref = parse_reference(f"{reg.host}/{repo_name}:v1")
    blob = hashlib.sha256(repo_name.encode()).digest() * 10_000  # 320 kB
    digest = ob.sha256(blob)
    assert not client.blob_exists(ref, digest, push=True)
    before = len(reg.requests())
    assert (
        client.upload_blob(ref, digest, len(blob), io.BytesIO(blob), chunk_size=chunk_size)
        == digest
    )
    assert client.blob_exists(ref, digest)
    with client.fetch_blob(ref, digest) as stream:
        assert b"".join(stream) == blob
    patches = [r for r in reg.requests()[before:] if r[0] == "PATCH"]
    assert len(patches) == (0 if chunk_size is None else 4)
    # A manifest that uses it can be put and read back byte for byte.
    img = ob.image_from_layers([ob.Layer(blob, digest, digest, ob.LAYER_TYPES["oci", ""])])
    client.upload_blob(ref, img.config_digest, len(img.config), io.BytesIO(img.config))
    assert client.put_manifest(ref, img.manifest, img.media_type) == img.manifest_digest
    assert client.get_manifest(ref)[0] == img.manifest


def test_upload_with_wrong_digest_is_refused(registry_plain: Registry, repo_name: str) -> None:
    client = anonymous()
    ref = parse_reference(f"{registry_plain.host}/{repo_name}")
    with pytest.raises(Exception, match="digest"):
        client.upload_blob(ref, ob.sha256(b"other"), 4, io.BytesIO(b"data"))
    assert not client.blob_exists(ref, ob.sha256(b"other"))


def test_cross_repo_mount(
    registry_token: Registry, make_client: MakeClient, repo_name: str
) -> None:
    reg = registry_token
    img = ob.busybox_image()
    ob.push_image(reg, f"{repo_name}-src", "latest", img)
    client = make_client(reg)
    src = parse_reference(f"{reg.host}/{repo_name}-src")
    dst = parse_reference(f"{reg.host}/{repo_name}-dst:v1")
    layer = img.layers[0].digest
    assert not client.blob_exists(dst, layer)
    before = len(reg.requests())
    assert client.mount_blob(dst, layer, src)
    assert client.blob_exists(dst, layer)
    posts = [r for r in reg.requests()[before:] if r[0] == "POST"]
    assert [p[2] for p in posts] == [201]
    # Mounting what the source lacks falls back (the opened upload is cancelled).
    assert not client.mount_blob(dst, "sha256:" + "e" * 64, src)
    # The source may be named by its path on the same registry.
    config = img.config_digest
    assert client.mount_blob(dst, config, f"{repo_name}-src")
    assert client.blob_exists(dst, config)


def test_manifest_by_digest_is_verified(registry_plain: Registry, repo_name: str) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    ref = parse_reference(f"{registry_plain.host}/{repo_name}@{img.manifest_digest}")
    assert anonymous().get_manifest(ref)[2] == img.manifest_digest


def test_retries_transient_errors(registry_plain: Registry, repo_name: str) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    proxy = RegistryProxy(registry_plain.url).start()
    try:
        proxy.fail_next = 2
        ref = parse_reference(f"{proxy.host}/{repo_name}")
        assert anonymous().get_manifest(ref)[2] == img.manifest_digest
        statuses = [r.path for r in proxy.requests]
        assert len(statuses) == 3  # two 503s, then the answer
        proxy.fail_next = 100
        with pytest.raises(Exception, match="registry answered 503"):
            anonymous().get_manifest(ref)
    finally:
        proxy.stop()


def test_follows_redirect_to_blob_storage_without_credentials(
    registry_plain: Registry, repo_name: str
) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    proxy = RegistryProxy(registry_plain.url, redirect_blobs=True).start()
    try:
        client = RegistryClient(credentials=Credentials({proxy.host: ("u", "secret")}, {}))
        # Make the client send Basic credentials to the registry host.
        client.auth.challenged(proxy.host, 'Basic realm="r"', [], sent_auth=False)
        ref = parse_reference(f"{proxy.host}/{repo_name}")
        layer = img.layers[0]
        with client.fetch_blob(ref, layer.digest) as stream:
            assert b"".join(stream) == layer.blob
        first, storage = proxy.requests[-2:]
        assert "Authorization" in first.headers
        assert storage.path.startswith("/_storage/")
        assert "Authorization" not in storage.headers
    finally:
        proxy.stop()


def test_range_resume(registry_plain: Registry, repo_name: str) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    ref = parse_reference(f"{registry_plain.host}/{repo_name}")
    layer = img.layers[0]
    with anonymous().fetch_blob(ref, layer.digest, offset=1000) as stream:
        assert stream.offset == 1000
        assert b"".join(stream) == layer.blob[1000:]


def test_unreachable_registry() -> None:
    from support.registry import free_port

    ref = parse_reference(f"127.0.0.1:{free_port()}/x")
    with pytest.raises(RegistryUnreachable, match="cannot reach registry"):
        anonymous().get_manifest(ref)


def test_tampered_manifest_by_digest(fresh_registry: Callable[..., Registry]) -> None:
    # A registry of its own: tampering with content-addressed storage affects every repo.
    reg = fresh_registry("plain")
    img = ob.busybox_image()
    ob.push_image(reg, "x", "latest", img)
    other = ob.whiteout_image()
    ob.push_image(reg, "x", "other", other)
    # Overwrite the stored manifest bytes: the registry now serves other content under the digest.
    reg.blob_path(img.manifest_digest).write_bytes(other.manifest)
    ref = parse_reference(f"{reg.host}/x@{img.manifest_digest}")
    with pytest.raises(DigestMismatch, match="content hashes to"):
        anonymous().get_manifest(ref)


def test_https_registry(fresh_registry: Callable[..., Registry], tmp_path: Path) -> None:
    from portique.image.registry.transport import Transport

    reg = fresh_registry("plain", tls=True)
    img = ob.busybox_image()
    ob.push_image(reg, "tls", "v1", img)
    ref = parse_reference(f"{reg.host}/tls:v1")
    # Loopback is insecure by default (as in Docker): HTTPS is tried first, unverified.
    client = anonymous()
    assert client.get_manifest(ref)[2] == img.manifest_digest
    assert client.transport.base_url(reg.host) == f"https://{reg.host}"
    # Verified: the self-signed certificate is refused...
    strict = Transport(loopback_insecure=False, certs_dirs=(tmp_path / "certs.d",))
    with pytest.raises(RegistryUnreachable, match=r"(?i)certificate.verify.failed"):
        RegistryClient(credentials=Credentials.none(), transport=strict).get_manifest(ref)
    # ...until it is trusted for that registry, Docker style (certs.d/<host>/ca.crt).
    (tmp_path / "certs.d" / reg.host).mkdir(parents=True)
    assert reg.ca_cert is not None
    (tmp_path / "certs.d" / reg.host / "ca.crt").write_bytes(reg.ca_cert.read_bytes())
    trusted = Transport(loopback_insecure=False, certs_dirs=(tmp_path / "certs.d",))
    client = RegistryClient(credentials=Credentials.none(), transport=trusted)
    assert client.get_manifest(ref)[2] == img.manifest_digest


def test_connection_lost_mid_manifest(registry_plain: Registry, repo_name: str) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    proxy = RegistryProxy(
        registry_plain.url, cut_blobs=1, cut_after=100, cut_paths="/manifests/"
    ).start()
    try:
        ref = parse_reference(f"{proxy.host}/{repo_name}")
        with pytest.raises(RegistryUnreachable, match="connection lost"):
            anonymous().get_manifest(ref)
        # The next attempt, on a fresh connection, works.
        assert anonymous().get_manifest(ref)[2] == img.manifest_digest
    finally:
        proxy.stop()
