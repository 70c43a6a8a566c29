"""Build OCI test images in pure Python and push them with raw HTTP.

Nothing here uses portique, so a bug in portique's own push or store cannot
hide behind its fixtures. Builders are deterministic (fixed mtimes, gzip
mtime 0) and cached, so the same image has the same digests in every test.

    from support import oci_build as ob

    img = ob.busybox_image()             # BuiltImage: /bin/busybox + applets, Cmd ["/bin/sh"]
    img = ob.whiteout_image()            # busybox + 2 layers with .wh.file and .wh..wh..opq
    idx = ob.multiarch_index()           # BuiltIndex: linux/amd64 + linux/arm64
    img = ob.random_image(layers=4, layer_size=1 << 20, seed=1)   # incompressible layers
    img = ob.image_from_layers([ob.Layer.build(tb)], cmd=["/bin/sh"])  # your own layers

    ob.push_image(reg, "busybox", "latest", img)   # reg: support.registry.Registry
    ob.push_index(reg, "multi", "latest", idx)
    ob.write_oci_layout(dest_dir, img, tag="latest")   # index.json, oci-layout, blobs/

Layers: TarBuilder().file(path, data, mode=0o644, uid=0, gid=0) / .dir / .symlink /
.hardlink / .whiteout(path) (adds `.wh.<name>`) / .opaque(dir) (adds `.wh..wh..opq`),
then Layer.build(tb, compression="gzip" | "zstd" | "") -> Layer (blob bytes, digest,
diff_id). BuiltImage has .manifest (bytes), .manifest_digest, .media_type, .config,
.config_digest, .layers, .blobs() (config + layers as (digest, bytes)), .descriptor().
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", ""): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", ""): "application/vnd.docker.image.rootfs.diff.tar",
}
MTIME = 1_700_000_000  # fixed, so layers are reproducible
Compression = Literal["gzip", "zstd", ""]
Flavour = Literal["oci", "docker"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TarBuilder:
    """A layer's tar stream, built entry by entry (parents are not added implicitly)."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, path: str, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(path.lstrip("/"))
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = MTIME
        return ti

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarBuilder:
        self._tar.addfile(self._info(path, tarfile.DIRTYPE, mode, uid, gid))
        return self

    def file(
        self, path: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> TarBuilder:
        ti = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        self._tar.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, path: str, target: str) -> TarBuilder:
        ti = self._info(path, tarfile.SYMTYPE, 0o777, 0, 0)
        ti.linkname = target
        self._tar.addfile(ti)
        return self

    def hardlink(self, path: str, target: str) -> TarBuilder:
        ti = self._info(path, tarfile.LNKTYPE, 0o644, 0, 0)
        ti.linkname = target.lstrip("/")
        self._tar.addfile(ti)
        return self

    def whiteout(self, path: str) -> TarBuilder:
        """Delete `path` from the layers below (OCI: an empty `.wh.<name>` file)."""
        parent, _, name = path.strip("/").rpartition("/")
        return self.file(f"{parent}/.wh.{name}" if parent else f".wh.{name}")

    def opaque(self, directory: str) -> TarBuilder:
        """Hide everything below `directory` in lower layers (`.wh..wh..opq`)."""
        return self.file(f"{directory.strip('/')}/.wh..wh..opq")

    def tar_bytes(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


@dataclass(frozen=True)
class Layer:
    blob: bytes
    digest: str
    diff_id: str
    media_type: str

    @classmethod
    def from_tar(
        cls, tar: bytes, compression: Compression = "gzip", flavour: Flavour = "oci"
    ) -> Layer:
        blob = compress(tar, compression)
        return cls(blob, sha256(blob), sha256(tar), LAYER_TYPES[flavour, compression])

    @classmethod
    def build(
        cls, tb: TarBuilder, compression: Compression = "gzip", flavour: Flavour = "oci"
    ) -> Layer:
        return cls.from_tar(tb.tar_bytes(), compression, flavour)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.blob)}


@dataclass(frozen=True)
class BuiltImage:
    manifest: bytes
    media_type: str
    config: bytes
    config_media_type: str
    layers: tuple[Layer, ...]
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    def blobs(self) -> list[tuple[str, bytes]]:
        return [(self.config_digest, self.config)] + [(x.digest, x.blob) for x in self.layers]

    def descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.manifest_digest,
            "size": len(self.manifest),
        }
        if self.platform:
            d["platform"] = self.platform
        return d


@dataclass(frozen=True)
class BuiltIndex:
    index: bytes
    media_type: str
    images: tuple[BuiltImage, ...]

    @property
    def digest(self) -> str:
        return sha256(self.index)


def image_from_layers(
    layers: list[Layer] | tuple[Layer, ...],
    *,
    cmd: list[str] | None = None,
    entrypoint: list[str] | None = None,
    env: list[str] | None = None,
    architecture: str = "amd64",
    os_: str = "linux",
    variant: str | None = None,
    flavour: Flavour = "oci",
    extra_config: dict[str, Any] | None = None,
) -> BuiltImage:
    container: dict[str, Any] = {
        "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": cmd,
    }
    if entrypoint is not None:
        container["Entrypoint"] = entrypoint
    container.update(extra_config or {})
    config: dict[str, Any] = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": architecture,
        "os": os_,
        "config": container,
        "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "oci_build"} for _ in layers],
    }
    platform = {"architecture": architecture, "os": os_}
    if variant:
        config["variant"] = variant
        platform["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_type = MT_OCI_CONFIG if flavour == "oci" else MT_DOCKER_CONFIG
    manifest_type = MT_OCI_MANIFEST if flavour == "oci" else MT_DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [x.descriptor() for x in layers],
    }
    return BuiltImage(
        json.dumps(manifest, indent=2).encode(),
        manifest_type,
        config_bytes,
        config_type,
        tuple(layers),
        platform,
    )


def index_of(images: list[BuiltImage], flavour: Flavour = "oci") -> BuiltIndex:
    media_type = MT_OCI_INDEX if flavour == "oci" else MT_DOCKER_LIST
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [img.descriptor() for img in images],
    }
    return BuiltIndex(json.dumps(doc, indent=2).encode(), media_type, tuple(images))


# ---- ready-made images -------------------------------------------------------------------


def busybox_tar() -> TarBuilder:
    """/bin/busybox from busybox-static, a symlink per applet, /etc/passwd and group."""
    busybox = Path("/bin/busybox").read_bytes()
    applets = subprocess.run(
        ["/bin/busybox", "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    tb = TarBuilder()
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "usr", "usr/bin", "var"):
        tb.dir(d, mode=0o1777 if d == "tmp" else 0o755)
    tb.file("bin/busybox", busybox, mode=0o755)
    for applet in sorted(set(applets)):
        if applet != "busybox":
            tb.symlink(f"bin/{applet}", "busybox")
    tb.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    tb.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return tb


@functools.cache
def busybox_layer(compression: Compression = "gzip", flavour: Flavour = "oci") -> Layer:
    return Layer.build(busybox_tar(), compression, flavour)


@functools.cache
def busybox_image(
    compression: Compression = "gzip", flavour: Flavour = "oci", architecture: str = "amd64"
) -> BuiltImage:
    return image_from_layers(
        [busybox_layer(compression, flavour)],
        cmd=["/bin/sh"],
        architecture=architecture,
        flavour=flavour,
    )


@functools.cache
def whiteout_image(compression: Compression = "gzip") -> BuiltImage:
    """busybox, then a layer adding files, then one removing some (.wh.) and
    making /opq opaque (.wh..wh..opq). Expected final tree:
    /data/keep (layer 2 "keep"), /data/gone absent, /opq/new only, /etc/motd "v2"."""
    l2 = (
        TarBuilder()
        .dir("data")
        .file("data/keep", b"keep\n")
        .file("data/gone", b"gone\n")
        .dir("opq")
        .file("opq/old1", b"1\n")
        .dir("opq/sub")
        .file("opq/sub/old2", b"2\n")
        .file("etc/motd", b"v1\n")
    )
    l3 = (
        TarBuilder()
        .dir("data")
        .whiteout("data/gone")
        .dir("opq")
        .opaque("opq")
        .file("opq/new", b"new\n")
        .file("etc/motd", b"v2\n")
    )
    return image_from_layers(
        [busybox_layer(compression), Layer.build(l2, compression), Layer.build(l3, compression)],
        cmd=["/bin/sh"],
    )


@functools.cache
def multiarch_index(flavour: Flavour = "oci") -> BuiltIndex:
    """linux/amd64 and linux/arm64/v8 images; each has /etc/arch naming its platform."""
    images = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        marker_tar = TarBuilder().dir("etc").file("etc/arch", f"{arch}\n".encode())
        marker = Layer.build(marker_tar, "gzip", flavour)
        images.append(
            image_from_layers(
                [busybox_layer("gzip", flavour), marker],
                cmd=["/bin/sh"],
                architecture=arch,
                variant=variant,
                flavour=flavour,
            )
        )
    return index_of(images, flavour)


def random_image(
    layers: int = 4, layer_size: int = 1 << 20, seed: int = 0, compression: Compression = "gzip"
) -> BuiltImage:
    """Layers of one file of pseudo-random, half-compressible bytes each (distinct per seed)."""
    rng = random.Random(seed)
    built = []
    for i in range(layers):
        # Half random, half repetitive text: gzip has real work, like a real layer.
        noise = rng.randbytes(layer_size // 2)
        text = (f"line {i} {seed} " * 64).encode()
        body = noise + (text * (layer_size // 2 // len(text) + 1))[: layer_size - len(noise)]
        tb = TarBuilder().dir(f"layer{i}").file(f"layer{i}/data.bin", body)
        built.append(Layer.build(tb, compression))
    return image_from_layers(built, cmd=["/bin/sh"])


# ---- pushing and writing ---------------------------------------------------------------


def push_blob(reg: Any, repo: str, digest: str, data: bytes) -> None:
    """Monolithic upload (POST then PUT ?digest=), skipped when the blob exists."""
    status, _, _ = reg.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    if status == 200:
        return
    status, headers, body = reg.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
    if status != 202:
        raise RuntimeError(f"upload start for {repo}: {status} {body[:300]!r}")
    location = headers["location"]
    if location.startswith("/"):
        location = reg.url + location
    sep = "&" if "?" in location else "?"
    status, _, body = reg.request(
        "PUT",
        f"{location}{sep}digest={digest}",
        data,
        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        repo=repo,
    )
    if status != 201:
        raise RuntimeError(f"upload of {digest} to {repo}: {status} {body[:300]!r}")


def put_manifest(reg: Any, repo: str, reference: str, data: bytes, media_type: str) -> None:
    status, _, body = reg.request(
        "PUT", f"/v2/{repo}/manifests/{reference}", data, {"Content-Type": media_type}
    )
    if status != 201:
        raise RuntimeError(f"manifest put {repo}:{reference}: {status} {body[:300]!r}")


def push_image(reg: Any, repo: str, tag: str | None, img: BuiltImage) -> str:
    """Push blobs and manifest (by tag, or by digest if tag is None); return its digest."""
    for digest, data in img.blobs():
        push_blob(reg, repo, digest, data)
    put_manifest(reg, repo, tag or img.manifest_digest, img.manifest, img.media_type)
    return img.manifest_digest


def push_index(reg: Any, repo: str, tag: str, idx: BuiltIndex) -> str:
    for img in idx.images:
        push_image(reg, repo, None, img)
    put_manifest(reg, repo, tag, idx.index, idx.media_type)
    return idx.digest


def write_oci_layout(dest: Path, obj: BuiltImage | BuiltIndex, tag: str | None = None) -> Path:
    """An OCI image layout directory (oci-layout, index.json, blobs/sha256/...)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> None:
        path = blobs / sha256(data).split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)

    images = obj.images if isinstance(obj, BuiltIndex) else (obj,)
    for img in images:
        for _, data in img.blobs():
            put(data)
        put(img.manifest)
    if isinstance(obj, BuiltIndex):
        put(obj.index)
        top: dict[str, Any] = {
            "mediaType": obj.media_type,
            "digest": obj.digest,
            "size": len(obj.index),
        }
    else:
        top = obj.descriptor()
        top.pop("platform", None)
    if tag:
        top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [top]}
    (dest / "index.json").write_text(json.dumps(index))
    return dest


def corrupt(path: Path) -> None:
    """Flip a byte in the middle of a file (same size, different digest)."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0xFF]))


__all__ = [
    "BuiltImage",
    "BuiltIndex",
    "Layer",
    "TarBuilder",
    "busybox_image",
    "busybox_layer",
    "corrupt",
    "image_from_layers",
    "index_of",
    "multiarch_index",
    "push_blob",
    "push_image",
    "push_index",
    "put_manifest",
    "random_image",
    "whiteout_image",
    "write_oci_layout",
]
