"""OCI image and Docker schema2 models: descriptors, manifests, indexes, configs.

Every document here arrives from a registry or an archive and is hostile
until parsed: `parse_manifest` and `parse_image_config` accept bytes, bound
their size, check every field's type and reject what is malformed with an
error naming the field (`manifest.layers[2].digest: ...`). The results are
frozen dataclasses; nothing downstream touches the raw JSON again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from portique.errors import InvalidArgument, NotFound
from portique.oci.digest import parse_digest

MEDIA_TYPE_OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_OCI_LAYER_NONDIST: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP: Final = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)
MEDIA_TYPE_OCI_LAYER_NONDIST_ZSTD: Final = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)
MEDIA_TYPE_DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED: Final = (
    "application/vnd.docker.distribution.manifest.v1+prettyjws"
)
MEDIA_TYPE_DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_LAYER_FOREIGN: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
INDEX_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
CONFIG_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG})
# What we send in Accept when fetching a manifest, preferred first.
ACCEPT_MANIFEST: Final = (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
)

# Layer media type -> compression ("gzip", "zstd", "" for a plain tar).
LAYER_COMPRESSION: Final[Mapping[str, str]] = {
    MEDIA_TYPE_OCI_LAYER: "",
    MEDIA_TYPE_OCI_LAYER_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_ZSTD: "zstd",
    MEDIA_TYPE_OCI_LAYER_NONDIST: "",
    MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP: "gzip",
    MEDIA_TYPE_OCI_LAYER_NONDIST_ZSTD: "zstd",
    MEDIA_TYPE_DOCKER_LAYER: "",
    MEDIA_TYPE_DOCKER_LAYER_GZIP: "gzip",
    MEDIA_TYPE_DOCKER_LAYER_FOREIGN: "gzip",
}
NONDISTRIBUTABLE_LAYER_TYPES: Final = frozenset(
    {
        MEDIA_TYPE_OCI_LAYER_NONDIST,
        MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP,
        MEDIA_TYPE_OCI_LAYER_NONDIST_ZSTD,
        MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
    }
)

# Bounds on hostile documents. distribution itself refuses manifests above 4 MiB.
MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024
MAX_CONFIG_SIZE: Final = 8 * 1024 * 1024
MAX_LAYERS: Final = 1000
MAX_INDEX_ENTRIES: Final = 1000


class InvalidManifest(InvalidArgument):
    """A manifest, index or config that is malformed or of an unexpected type."""


# ---- field helpers ---------------------------------------------------------------


def _fail(where: str, why: str) -> InvalidManifest:
    return InvalidManifest(f"{where}: {why}")


def _obj(v: object, where: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise _fail(where, f"expected an object, got {type(v).__name__}")
    return v


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise _fail(f"{where}.{key}", "missing")
        return None
    if not isinstance(v, str):
        raise _fail(f"{where}.{key}", f"expected a string, got {type(v).__name__}")
    return v


def _req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    v = _str(d, key, where)
    assert v is not None
    return v


def _int(d: Mapping[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    if v is None:
        raise _fail(f"{where}.{key}", "missing")
    # bool is an int in Python, never in JSON schema.
    if not isinstance(v, int) or isinstance(v, bool):
        raise _fail(f"{where}.{key}", f"expected an integer, got {type(v).__name__}")
    if v < 0:
        raise _fail(f"{where}.{key}", "must not be negative")
    return v


def _str_list(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _fail(f"{where}.{key}", "expected a list of strings")
    return tuple(v)


def _str_map(d: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise _fail(f"{where}.{key}", "expected an object of strings")
    return dict(v)


def _load_json(data: bytes, what: str, limit: int) -> Mapping[str, Any]:
    if len(data) > limit:
        raise InvalidManifest(f"{what} is too large: {len(data)} bytes (limit {limit})")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise InvalidManifest(f"{what} is not valid JSON: {exc}") from None
    return _obj(doc, what)


# ---- models ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        return d


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_json()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest: OCI v1 or Docker schema2."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    schema_version: int = 2


@dataclass(frozen=True, slots=True)
class Index:
    """An image index: OCI v1 index or Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    schema_version: int = 2


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The runtime defaults an image carries (config.config)."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str | None = None


@dataclass(frozen=True, slots=True)
class ImageConfig:
    architecture: str
    os: str
    diff_ids: tuple[str, ...]
    config: ContainerConfig
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant)


# ---- parsing ---------------------------------------------------------------------


def parse_platform_json(v: object, where: str) -> Platform:
    d = _obj(v, where)
    return Platform(
        os=_req_str(d, "os", where),
        architecture=_req_str(d, "architecture", where),
        variant=_str(d, "variant", where, required=False) or None,
        os_version=_str(d, "os.version", where, required=False),
        os_features=_str_list(d, "os.features", where),
    )


def parse_descriptor(v: object, where: str) -> Descriptor:
    d = _obj(v, where)
    media_type = _req_str(d, "mediaType", where)
    digest = _req_str(d, "digest", where)
    try:
        parse_digest(digest)
    except InvalidArgument as exc:
        raise _fail(f"{where}.digest", exc.message) from None
    size = _int(d, "size", where)
    urls = _str_list(d, "urls", where)
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise _fail(f"{where}.urls", f"unsupported URL {url[:100]!r}")
    platform = d.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=urls,
        annotations=_str_map(d, "annotations", where),
        platform=None if platform is None else parse_platform_json(platform, f"{where}.platform"),
        artifact_type=_str(d, "artifactType", where, required=False),
    )


def _check_schema_version(d: Mapping[str, Any], what: str) -> int:
    version = _int(d, "schemaVersion", what)
    if version == 1:
        raise InvalidManifest(
            f"{what}: Docker schema1 manifests are not supported",
            hint="push the image again with a current client",
        )
    if version != 2:
        raise _fail(f"{what}.schemaVersion", f"unsupported version {version}")
    return version


def _resolve_media_type(d: Mapping[str, Any], media_type: str | None) -> str:
    body_type = _str(d, "mediaType", "manifest", required=False)
    if media_type is not None:
        media_type = media_type.split(";", 1)[0].strip()
    if media_type in (None, "", "application/json", "application/octet-stream"):
        # No useful Content-Type: go by the document (OCI allows mediaType to be absent).
        if body_type:
            return body_type
        if "manifests" in d:
            return MEDIA_TYPE_OCI_INDEX
        if "config" in d or "layers" in d:
            return MEDIA_TYPE_OCI_MANIFEST
        raise InvalidManifest("manifest: cannot tell its media type")
    assert media_type is not None
    known = MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES
    if media_type not in known | {MEDIA_TYPE_DOCKER_SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED}:
        raise InvalidManifest(f"manifest: unsupported media type {media_type[:200]!r}")
    if body_type and body_type != media_type:
        raise _fail("manifest.mediaType", f"{body_type!r} does not match {media_type!r}")
    return media_type


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index; `media_type` is the Content-Type it was served with."""
    d = _load_json(data, "manifest", MAX_MANIFEST_SIZE)
    kind = _resolve_media_type(d, media_type)
    if kind in (MEDIA_TYPE_DOCKER_SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED):
        raise InvalidManifest(
            "manifest: Docker schema1 manifests are not supported",
            hint="push the image again with a current client",
        )
    if kind in MANIFEST_MEDIA_TYPES:
        return _parse_image_manifest(d, kind)
    if kind in INDEX_MEDIA_TYPES:
        return _parse_index(d, kind)
    raise InvalidManifest(f"manifest: unsupported media type {kind[:200]!r}")


def _parse_image_manifest(d: Mapping[str, Any], kind: str) -> Manifest:
    version = _check_schema_version(d, "manifest")
    if kind == MEDIA_TYPE_DOCKER_MANIFEST and d.get("mediaType") != kind:
        raise _fail("manifest.mediaType", "missing (required by Docker schema2)")
    if "manifests" in d:
        raise _fail("manifest.manifests", "not allowed in an image manifest")
    config = parse_descriptor(d.get("config"), "manifest.config")
    layers_v = d.get("layers")
    if not isinstance(layers_v, list):
        raise _fail("manifest.layers", "expected a list")
    if len(layers_v) > MAX_LAYERS:
        raise _fail("manifest.layers", f"too many layers ({len(layers_v)})")
    layers = tuple(parse_descriptor(x, f"manifest.layers[{i}]") for i, x in enumerate(layers_v))
    subject = d.get("subject")
    return Manifest(
        media_type=kind,
        config=config,
        layers=layers,
        annotations=_str_map(d, "annotations", "manifest"),
        subject=None if subject is None else parse_descriptor(subject, "manifest.subject"),
        schema_version=version,
    )


def _parse_index(d: Mapping[str, Any], kind: str) -> Index:
    version = _check_schema_version(d, "index")
    if kind == MEDIA_TYPE_DOCKER_MANIFEST_LIST and d.get("mediaType") != kind:
        raise _fail("index.mediaType", "missing (required by Docker manifest lists)")
    if "layers" in d or "config" in d:
        raise _fail("index", "config and layers are not allowed in an index")
    entries = d.get("manifests")
    if not isinstance(entries, list):
        raise _fail("index.manifests", "expected a list")
    if len(entries) > MAX_INDEX_ENTRIES:
        raise _fail("index.manifests", f"too many entries ({len(entries)})")
    return Index(
        media_type=kind,
        manifests=tuple(
            parse_descriptor(x, f"index.manifests[{i}]") for i, x in enumerate(entries)
        ),
        annotations=_str_map(d, "annotations", "index"),
        schema_version=version,
    )


def _optional_argv(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    if d.get(key) is None:
        return None
    return _str_list(d, key, where)


def _key_set(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, dict):
        raise _fail(f"{where}.{key}", "expected an object")
    return tuple(str(k) for k in v)


def parse_image_config(data: bytes) -> ImageConfig:
    d = _load_json(data, "config", MAX_CONFIG_SIZE)
    rootfs = _obj(d.get("rootfs"), "config.rootfs")
    if rootfs.get("type") != "layers":
        raise _fail("config.rootfs.type", "expected 'layers'")
    diff_ids = _str_list(rootfs, "diff_ids", "config.rootfs")
    for i, diff_id in enumerate(diff_ids):
        try:
            parse_digest(diff_id)
        except InvalidArgument as exc:
            raise _fail(f"config.rootfs.diff_ids[{i}]", exc.message) from None
    cc_v = d.get("config")
    cc = _obj(cc_v, "config.config") if cc_v is not None else {}
    where = "config.config"
    history_v = d.get("history") or []
    if not isinstance(history_v, list) or not all(isinstance(h, dict) for h in history_v):
        raise _fail("config.history", "expected a list of objects")
    return ImageConfig(
        architecture=_req_str(d, "architecture", "config"),
        os=_req_str(d, "os", "config"),
        variant=_str(d, "variant", "config", required=False) or None,
        created=_str(d, "created", "config", required=False),
        author=_str(d, "author", "config", required=False),
        diff_ids=diff_ids,
        history=tuple(history_v),
        config=ContainerConfig(
            user=_str(cc, "User", where, required=False) or "",
            env=_str_list(cc, "Env", where),
            entrypoint=_optional_argv(cc, "Entrypoint", where),
            cmd=_optional_argv(cc, "Cmd", where),
            working_dir=_str(cc, "WorkingDir", where, required=False) or "",
            exposed_ports=_key_set(cc, "ExposedPorts", where),
            volumes=_key_set(cc, "Volumes", where),
            labels=_str_map(cc, "Labels", where),
            stop_signal=_str(cc, "StopSignal", where, required=False),
        ),
    )


# ---- platforms -------------------------------------------------------------------

_ARCH_ALIASES: Final = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}
# The variant an architecture has when none is given.
_DEFAULT_VARIANT: Final = {"arm64": "v8", "arm": "v7"}


def normalize_platform(os_: str, arch: str, variant: str | None) -> Platform:
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    if variant is None and arch == "arm" and os_ == "linux":
        variant = "v7"
    if arch == "arm64" and variant == "v8":
        # v8 is arm64's only variant in practice; drop it so both spellings match.
        variant = None
    return Platform(os=os_.lower(), architecture=arch, variant=variant or None)


def parse_platform(s: str) -> Platform:
    """`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`."""
    parts = s.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidArgument(
            f"invalid platform {s!r}: expected os/arch[/variant], e.g. linux/amd64"
        )
    return normalize_platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def host_platform() -> str:
    machine = os.uname().machine  # what platform.machine() reads, without its import
    return f"linux/{_ARCH_ALIASES.get(machine.lower(), machine.lower())}"


def platform_matches(want: Platform, have: Platform) -> bool:
    h = normalize_platform(have.os, have.architecture, have.variant)
    if (h.os, h.architecture) != (want.os, want.architecture):
        return False
    if want.variant is None:
        return True
    return (h.variant or _DEFAULT_VARIANT.get(h.architecture)) == want.variant


def select_platform(index: Index, platform: str | Platform = "linux/amd64") -> Descriptor:
    """The index entry for `platform`; an exact variant beats a variant-less entry."""
    want = parse_platform(platform) if isinstance(platform, str) else platform
    candidates = [
        m
        for m in index.manifests
        if m.platform is not None
        and m.media_type in MANIFEST_MEDIA_TYPES
        and platform_matches(want, m.platform)
    ]
    if not candidates:
        raise NotFound(f"no matching manifest for {want} in the manifest list entries")
    if want.variant is None:
        # With no variant asked, prefer an entry with none (or the architecture's default).
        for m in candidates:
            assert m.platform is not None
            h = normalize_platform(m.platform.os, m.platform.architecture, m.platform.variant)
            if h.variant in (None, _DEFAULT_VARIANT.get(h.architecture)):
                return m
    return candidates[0]


def new_manifest(
    config_digest: str, config_size: int, layers: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The OCI image manifest document of a config and its layers (JSON descriptors),
    for an image made here (build, import, a docker-archive's image)."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_OCI_CONFIG,
            "digest": config_digest,
            "size": config_size,
        },
        "layers": list(layers),
    }


def layer_compression(descriptor: Descriptor) -> str:
    """ "gzip", "zstd" or "" (plain tar); InvalidManifest for a non-layer media type."""
    try:
        return LAYER_COMPRESSION[descriptor.media_type]
    except KeyError:
        raise InvalidManifest(
            f"layer {descriptor.digest}: unsupported media type {descriptor.media_type[:200]!r}"
        ) from None


__all__ = [
    "ACCEPT_MANIFEST",
    "CONFIG_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "LAYER_COMPRESSION",
    "MANIFEST_MEDIA_TYPES",
    "MAX_CONFIG_SIZE",
    "MAX_MANIFEST_SIZE",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_FOREIGN",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_LAYER",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_LAYER_ZSTD",
    "MEDIA_TYPE_OCI_MANIFEST",
    "NONDISTRIBUTABLE_LAYER_TYPES",
    "ContainerConfig",
    "Descriptor",
    "ImageConfig",
    "Index",
    "InvalidManifest",
    "Manifest",
    "Platform",
    "host_platform",
    "layer_compression",
    "new_manifest",
    "parse_descriptor",
    "parse_image_config",
    "parse_manifest",
    "parse_platform",
    "select_platform",
]
