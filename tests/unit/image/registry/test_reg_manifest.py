"""Manifest, index and config parsing; platform selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portique.errors import InvalidArgument, NotFound
from portique.oci import image as oci

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def desc(media_type: str, digest: str = D1, size: object = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def oci_manifest(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": oci.MEDIA_TYPE_OCI_MANIFEST,
        "config": desc(oci.MEDIA_TYPE_OCI_CONFIG, D1, 100),
        "layers": [desc(oci.MEDIA_TYPE_OCI_LAYER_GZIP, D2, 1000)],
    }
    doc.update(over)
    return doc


def enc(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_oci_manifest() -> None:
    m = oci.parse_manifest(enc(oci_manifest()), oci.MEDIA_TYPE_OCI_MANIFEST)
    assert isinstance(m, oci.Manifest)
    assert m.config == oci.Descriptor(oci.MEDIA_TYPE_OCI_CONFIG, D1, 100)
    assert [x.digest for x in m.layers] == [D2]
    assert oci.layer_compression(m.layers[0]) == "gzip"


def test_docker_schema2_manifest() -> None:
    doc = oci_manifest(
        mediaType=oci.MEDIA_TYPE_DOCKER_MANIFEST,
        config=desc(oci.MEDIA_TYPE_DOCKER_CONFIG, D1, 5),
        layers=[desc(oci.MEDIA_TYPE_DOCKER_LAYER_GZIP, D2, 7)],
    )
    m = oci.parse_manifest(enc(doc), oci.MEDIA_TYPE_DOCKER_MANIFEST + "; charset=utf-8")
    assert isinstance(m, oci.Manifest)
    assert m.media_type == oci.MEDIA_TYPE_DOCKER_MANIFEST


def test_docker_schema2_needs_media_type_field() -> None:
    doc = oci_manifest()
    del doc["mediaType"]
    with pytest.raises(oci.InvalidManifest, match=r"manifest\.mediaType: missing"):
        oci.parse_manifest(enc(doc), oci.MEDIA_TYPE_DOCKER_MANIFEST)
    # OCI allows it to be absent.
    assert isinstance(oci.parse_manifest(enc(doc), oci.MEDIA_TYPE_OCI_MANIFEST), oci.Manifest)


@pytest.mark.parametrize("kind", [oci.MEDIA_TYPE_OCI_INDEX, oci.MEDIA_TYPE_DOCKER_MANIFEST_LIST])
def test_index_and_manifest_list(kind: str) -> None:
    entry_type = (
        oci.MEDIA_TYPE_OCI_MANIFEST
        if kind == oci.MEDIA_TYPE_OCI_INDEX
        else oci.MEDIA_TYPE_DOCKER_MANIFEST
    )
    doc = {
        "schemaVersion": 2,
        "mediaType": kind,
        "manifests": [
            desc(entry_type, D1, platform={"os": "linux", "architecture": "amd64"}),
            desc(
                entry_type, D2, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}
            ),
        ],
    }
    idx = oci.parse_manifest(enc(doc), kind)
    assert isinstance(idx, oci.Index)
    assert oci.select_platform(idx, "linux/amd64").digest == D1
    assert oci.select_platform(idx, "linux/arm64").digest == D2
    assert oci.select_platform(idx, "linux/arm64/v8").digest == D2
    assert oci.select_platform(idx, "linux/aarch64").digest == D2
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        oci.select_platform(idx, "linux/s390x")


def test_platform_variants() -> None:
    doc = {
        "schemaVersion": 2,
        "manifests": [
            desc(
                oci.MEDIA_TYPE_OCI_MANIFEST,
                D1,
                platform={"os": "linux", "architecture": "arm", "variant": "v6"},
            ),
            desc(
                oci.MEDIA_TYPE_OCI_MANIFEST,
                D2,
                platform={"os": "linux", "architecture": "arm", "variant": "v7"},
            ),
            # Attestations and other artifacts have platform unknown/unknown.
            desc(
                oci.MEDIA_TYPE_OCI_MANIFEST,
                D3,
                platform={"os": "unknown", "architecture": "unknown"},
            ),
        ],
    }
    idx = oci.parse_manifest(enc(doc), None)
    assert isinstance(idx, oci.Index)
    assert oci.select_platform(idx, "linux/arm").digest == D2  # arm means arm/v7
    assert oci.select_platform(idx, "linux/arm/v6").digest == D1
    with pytest.raises(NotFound):
        oci.select_platform(idx, "linux/arm/v5")


@pytest.mark.parametrize("bad", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_string(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid platform"):
        oci.parse_platform(bad)


def test_media_type_inferred_without_content_type() -> None:
    doc = oci_manifest()
    del doc["mediaType"]
    assert isinstance(oci.parse_manifest(enc(doc), "application/json"), oci.Manifest)
    assert isinstance(oci.parse_manifest(enc({"schemaVersion": 2, "manifests": []})), oci.Index)


@pytest.mark.parametrize(
    ("doc", "media_type", "match"),
    [
        (oci_manifest(), "text/html", "unsupported media type 'text/html'"),
        (oci_manifest(), oci.MEDIA_TYPE_OCI_INDEX, r"does not match"),
        (oci_manifest(schemaVersion=1), None, "schema1"),
        (oci_manifest(schemaVersion=3), None, r"schemaVersion: unsupported version 3"),
        (oci_manifest(schemaVersion="2"), None, r"schemaVersion: expected an integer"),
        (oci_manifest(schemaVersion=True), None, r"schemaVersion: expected an integer"),
        ({"schemaVersion": 2}, None, "cannot tell its media type"),
        (oci_manifest(config=None), None, r"manifest\.config: expected an object"),
        (oci_manifest(layers={}), None, r"manifest\.layers: expected a list"),
        (
            oci_manifest(layers=[{"mediaType": "x", "size": 1}]),
            None,
            r"layers\[0\]\.digest: missing",
        ),
        (
            oci_manifest(layers=[desc("x", "sha256:../../etc", 1)]),
            None,
            r"layers\[0\]\.digest: invalid digest",
        ),
        (
            oci_manifest(layers=[desc("x", D1, -1)]),
            None,
            r"layers\[0\]\.size: must not be negative",
        ),
        (
            oci_manifest(layers=[desc("x", D1, 1.5)]),
            None,
            r"layers\[0\]\.size: expected an integer",
        ),
        (
            oci_manifest(layers=[desc("x", D1, 1, urls=["file:///etc/passwd"])]),
            None,
            r"layers\[0\]\.urls: unsupported URL",
        ),
        (
            oci_manifest(annotations={"a": 1}),
            None,
            r"manifest\.annotations: expected an object of strings",
        ),
        (
            oci_manifest(manifests=[]),
            oci.MEDIA_TYPE_OCI_MANIFEST,
            "not allowed in an image manifest",
        ),
        ([1, 2], None, "expected an object"),
        (
            {"schemaVersion": 2, "manifests": [desc("x", D1, 1, platform={"os": "linux"})]},
            None,
            r"manifests\[0\]\.platform\.architecture: missing",
        ),
        (
            {
                "schemaVersion": 2,
                "mediaType": oci.MEDIA_TYPE_DOCKER_MANIFEST_LIST,
                "manifests": "x",
            },
            None,
            r"index\.manifests: expected a list",
        ),
    ],
)
def test_rejects_malformed(doc: Any, media_type: str | None, match: str) -> None:
    with pytest.raises(oci.InvalidManifest, match=match):
        oci.parse_manifest(enc(doc), media_type)


def test_rejects_non_json_and_oversize() -> None:
    with pytest.raises(oci.InvalidManifest, match="not valid JSON"):
        oci.parse_manifest(b"\xff{", None)
    big = enc(oci_manifest(annotations={"pad": "x" * oci.MAX_MANIFEST_SIZE}))
    with pytest.raises(oci.InvalidManifest, match="too large"):
        oci.parse_manifest(big, oci.MEDIA_TYPE_OCI_MANIFEST)


def test_rejects_too_many_layers() -> None:
    layers = [desc(oci.MEDIA_TYPE_OCI_LAYER, D2, 1)] * (oci.MAX_LAYERS + 1)
    with pytest.raises(oci.InvalidManifest, match="too many layers"):
        oci.parse_manifest(enc(oci_manifest(layers=layers)), None)


def test_unknown_layer_type_is_refused_when_pulling() -> None:
    m = oci.parse_manifest(enc(oci_manifest(layers=[desc("application/x-evil", D2, 1)])), None)
    assert isinstance(m, oci.Manifest)
    with pytest.raises(oci.InvalidManifest, match="unsupported media type"):
        oci.layer_compression(m.layers[0])


def config_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["/bin/sh"],
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"a": "b"},
        },
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    }
    doc.update(over)
    return doc


def test_image_config() -> None:
    cfg = oci.parse_image_config(enc(config_doc()))
    assert cfg.diff_ids == (D1, D2)
    assert cfg.config.cmd == ("/bin/sh",)
    assert cfg.config.entrypoint is None
    assert cfg.config.exposed_ports == ("80/tcp",)
    assert cfg.platform == oci.Platform("linux", "amd64")


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"rootfs": {"type": "zfs", "diff_ids": []}}, r"rootfs\.type"),
        ({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}, r"diff_ids\[0\]"),
        ({"architecture": None}, r"config\.architecture: missing"),
        ({"config": {"Cmd": "sh"}}, r"config\.config\.Cmd: expected a list"),
        ({"config": {"Env": [1]}}, r"config\.config\.Env"),
        ({"history": "x"}, r"config\.history"),
    ],
)
def test_image_config_rejects(over: dict[str, Any], match: str) -> None:
    with pytest.raises(oci.InvalidManifest, match=match):
        oci.parse_image_config(enc(config_doc(**over)))
