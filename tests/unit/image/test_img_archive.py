"""Archive load/save against an in-memory image registry and a real content store.

The archive is hostile: these cases check that load reads members by name only,
bounds sizes and verifies every digest before registering anything.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from portique.errors import InvalidArgument, NotFound
from portique.image import importer
from portique.image.archive import OCI_LAYOUT, InvalidArchive
from portique.image.load import MAX_JSON_MEMBER, LoadedImage, _names_from_annotations, load
from portique.image.save import save
from portique.image.store import ContentStore
from portique.oci.digest import DigestMismatch
from portique.oci.image import Descriptor


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRecord:
    id: str
    manifest_digest: str
    repo_tags: list[str]
    repo_digests: list[str] = field(default_factory=list)


class FakeImages:
    """An in-memory peer of portique.image.images.Images with a real ContentStore."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = ContentStore(root)
        self.unpacked: list[Descriptor] = []
        self.records: dict[str, FakeRecord] = {}

    def unpack_layers(self, descs: list[Descriptor]) -> None:
        for d in descs:
            assert self.store.has(d.digest)
        self.unpacked.extend(descs)

    def register(
        self,
        manifest_bytes: bytes,
        manifest_digest: str,
        config_bytes: bytes,
        *,
        tags: list[str],
        repo_digest: str | None = None,
    ) -> FakeRecord:
        assert sha(manifest_bytes) == manifest_digest
        assert self.store.has(manifest_digest)
        digests = [repo_digest] if repo_digest else []
        rec = FakeRecord(sha(config_bytes), manifest_digest, list(tags), digests)
        self.records[rec.id] = rec
        return rec

    def resolve(self, name: str) -> FakeRecord:
        for rec in self.records.values():
            if name in (rec.id, *rec.repo_tags):
                return rec
        raise NotFound(f"no such image: {name}")


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(diff_ids: list[str], cmd: list[str] | None = None) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": cmd or ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()


def outer_tar(members: list[tuple[str, bytes]], *, symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
    return buf.getvalue()


def docker_archive(
    *, compress: bool = False, tags: list[str] | None = None, legacy_names: bool = False
) -> tuple[bytes, bytes, bytes]:
    """A classic docker-archive: (archive, config, layer blob)."""
    tar = layer_tar({"hello.txt": b"hello\n"})
    diff_id = sha(tar)
    blob = gzip.compress(tar, mtime=0) if compress else tar
    config = config_for([diff_id])
    cfg_name = f"{sha(config)[7:]}.json"
    layer_name = "0123abcd/layer.tar" if legacy_names else f"blobs/sha256/{sha(blob)[7:]}"
    manifest = [
        {"Config": cfg_name, "RepoTags": tags or ["busybox:latest"], "Layers": [layer_name]}
    ]
    data = outer_tar(
        [
            (cfg_name, config),
            (layer_name, blob),
            ("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    return data, config, blob


@pytest.fixture
def images(tmp_path: Path) -> FakeImages:
    return FakeImages(tmp_path / "root")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("legacy_names", [False, True])
def test_load_docker_archive(images: FakeImages, compress: bool, legacy_names: bool) -> None:
    data, config, blob = docker_archive(compress=compress, legacy_names=legacy_names)
    loaded = load(images, io.BytesIO(data))  # type: ignore[arg-type]
    assert loaded == [LoadedImage(sha(config), ("busybox:latest",))]
    assert images.store.read_bytes(sha(blob)) == blob
    assert [d.digest for d in images.unpacked] == [sha(blob)]
    expected_type = "tar+gzip" if compress else "tar"
    assert images.unpacked[0].media_type.endswith(expected_type)


def test_load_from_a_pipe_and_gzipped_outer_tar(images: FakeImages) -> None:
    data, config, _ = docker_archive()

    class Pipe(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self._b = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self._b.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    loaded = load(images, io.BufferedReader(Pipe(gzip.compress(data))))  # type: ignore[arg-type]
    assert loaded[0].id == sha(config)


def test_save_then_load_both_formats_keeps_digests(images: FakeImages, tmp_path: Path) -> None:
    data, config, blob = docker_archive(compress=True)
    load(images, io.BytesIO(data))  # type: ignore[arg-type]
    rec = images.resolve("busybox:latest")
    for fmt in ("docker-archive", "oci-archive"):
        out = io.BytesIO()
        save(images, ["busybox:latest"], out, format=fmt)  # type: ignore[arg-type]
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
            names = set(t.getnames())
            index = json.load(t.extractfile("index.json"))  # type: ignore[arg-type]
        assert {"oci-layout", "index.json", f"blobs/sha256/{sha(blob)[7:]}"} <= names
        assert ("manifest.json" in names) == (fmt == "docker-archive")
        ann = index["manifests"][0]["annotations"]
        assert ann["org.opencontainers.image.ref.name"] == "latest"
        assert ann["io.containerd.image.name"] == "docker.io/library/busybox:latest"
        other = FakeImages(tmp_path / fmt)
        loaded = load(other, io.BytesIO(out.getvalue()))  # type: ignore[arg-type]
        assert loaded == [LoadedImage(sha(config), ("busybox:latest",))]
        assert other.records[sha(config)].manifest_digest == rec.manifest_digest


def test_member_with_dotdot_is_never_read(images: FakeImages) -> None:
    data, config, blob = docker_archive()
    # The only manifest.json is "../manifest.json": it must not be found.
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = t.extractfile("manifest.json").read()  # type: ignore[union-attr]
    bad = outer_tar(
        [
            (f"{sha(config)[7:]}.json", config),
            (f"blobs/sha256/{sha(blob)[7:]}", blob),
            ("../manifest.json", manifest),
        ]
    )
    with pytest.raises(InvalidArchive, match=r"no manifest\.json or index\.json"):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


def test_layer_name_escaping_is_refused(images: FakeImages) -> None:
    tar = layer_tar({"a": b"a"})
    config = config_for([sha(tar)])
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": ["../../etc/passwd"]}]
    bad = outer_tar([("c.json", config), ("manifest.json", json.dumps(manifest).encode())])
    with pytest.raises(InvalidArchive, match="bad layer name"):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


def test_symlinked_member_is_refused(images: FakeImages) -> None:
    data, config, _ = docker_archive()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = t.extractfile("manifest.json").read()  # type: ignore[union-attr]
    cfg_name = f"{sha(config)[7:]}.json"
    bad = outer_tar([("manifest.json", manifest)], symlinks={cfg_name: "/etc/shadow"})
    with pytest.raises(InvalidArchive, match="not a regular file"):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


def test_config_digest_mismatch(images: FakeImages) -> None:
    tar = layer_tar({"a": b"a"})
    config = config_for([sha(tar)])
    liar = "0" * 64 + ".json"
    manifest = [{"Config": liar, "RepoTags": [], "Layers": ["l.tar"]}]
    bad = outer_tar(
        [(liar, config), ("l.tar", tar), ("manifest.json", json.dumps(manifest).encode())]
    )
    with pytest.raises(DigestMismatch):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


def test_layer_diff_id_mismatch_registers_nothing(images: FakeImages) -> None:
    tar = layer_tar({"a": b"a"})
    other = layer_tar({"a": b"b"})
    config = config_for([sha(tar)])
    manifest = [
        {"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["blobs/sha256/" + sha(other)[7:]]}
    ]
    bad = outer_tar(
        [
            ("c.json", config),
            ("blobs/sha256/" + sha(other)[7:], other),
            ("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    with pytest.raises(DigestMismatch, match="the config says"):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]
    assert images.records == {}


def test_layer_content_does_not_match_its_name(images: FakeImages) -> None:
    tar = layer_tar({"a": b"a"})
    config = config_for([sha(tar)])
    name = "blobs/sha256/" + "1" * 64
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": [name]}]
    bad = outer_tar(
        [("c.json", config), (name, tar), ("manifest.json", json.dumps(manifest).encode())]
    )
    with pytest.raises(DigestMismatch):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]
    assert not images.store.has("sha256:" + "1" * 64)


def test_oversize_manifest_json(images: FakeImages) -> None:
    big = b"[" + b" " * (MAX_JSON_MEMBER + 10) + b"]"
    with pytest.raises(InvalidArchive, match="larger than"):
        load(images, io.BytesIO(outer_tar([("manifest.json", big)])))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"{}", "expected a list"),
        (b"not json", "not valid JSON"),
        (b'[{"Config": 5, "Layers": []}]', "Config"),
        (b'[{"Config": "c.json", "Layers": "x"}]', "Layers"),
        (b"[]", "contains no image"),
    ],
)
def test_malformed_manifest_json(images: FakeImages, manifest: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load(images, io.BytesIO(outer_tar([("manifest.json", manifest)])))  # type: ignore[arg-type]


def test_layer_count_must_match_diff_ids(images: FakeImages) -> None:
    config = config_for([sha(b"x"), sha(b"y")])
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": ["l.tar"]}]
    bad = outer_tar([("c.json", config), ("manifest.json", json.dumps(manifest).encode())])
    with pytest.raises(InvalidArchive, match="1 layers for 2 diff_ids"):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


def test_not_a_tar(images: FakeImages) -> None:
    with pytest.raises(InvalidArchive):
        load(images, io.BytesIO(b"this is not an archive" * 100))  # type: ignore[arg-type]


def test_oci_index_blob_digest_mismatch(images: FakeImages) -> None:
    manifest = b'{"schemaVersion":2}'
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "2" * 64,
                "size": len(manifest),
            }
        ],
    }
    bad = outer_tar(
        [
            ("oci-layout", OCI_LAYOUT),
            ("index.json", json.dumps(index).encode()),
            ("blobs/sha256/" + "2" * 64, manifest),
        ]
    )
    with pytest.raises(DigestMismatch):
        load(images, io.BytesIO(bad))  # type: ignore[arg-type]


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_import_rootfs_makes_one_layer_image(images: FakeImages, compression: str) -> None:
    import zstandard

    tar = layer_tar({"bin/sh": b"#!fake\n"})
    blob = {
        "": tar,
        "gzip": gzip.compress(tar, mtime=0),
        "zstd": zstandard.ZstdCompressor().compress(tar),
    }[compression]
    rec = importer.import_rootfs(
        images,  # type: ignore[arg-type]
        io.BytesIO(blob),
        "busybox:latest",
        changes=['CMD ["/bin/sh"]'],
        message="hi",
    )
    assert rec.repo_tags == ["busybox:latest"]
    config = json.loads(images.store.read_bytes(rec.id))
    assert config["rootfs"]["diff_ids"] == [sha(tar)]
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert config["comment"] == "hi"
    assert [d.digest for d in images.unpacked] == [sha(blob)]


@pytest.mark.parametrize(
    "payload", [b"", b"definitely not a tar file" * 40, gzip.compress(b"x" * 600)]
)
def test_import_refuses_non_tar(images: FakeImages, payload: bytes) -> None:
    with pytest.raises(InvalidArgument, match="import"):
        importer.import_rootfs(images, io.BytesIO(payload), None)  # type: ignore[arg-type]
    assert images.records == {}


def test_load_reports_progress_per_layer(images: FakeImages) -> None:
    data, _, blob = docker_archive(compress=True)
    calls: list[tuple[str, int, int]] = []
    load(images, io.BytesIO(data), progress=lambda *a: calls.append(a))  # type: ignore[arg-type]
    assert calls
    assert calls[-1] == (sha(blob), len(blob), len(blob))
    assert all(done <= total for _, done, total in calls)


def test_compressed_layer_named_by_its_diff_id_loads(images: FakeImages) -> None:
    tar = layer_tar({"x": b"x"})
    blob = gzip.compress(tar, mtime=0)
    config = config_for([sha(tar)])
    name = f"{sha(tar)[7:]}.tar"  # skopeo's naming, but gzip content
    manifest = [{"Config": "c.json", "RepoTags": ["n:1"], "Layers": [name]}]
    data = outer_tar(
        [("c.json", config), (name, blob), ("manifest.json", json.dumps(manifest).encode())]
    )
    assert load(images, io.BytesIO(data))[0].tags == ("n:1",)  # type: ignore[arg-type]
    assert images.store.has(sha(blob))


@pytest.mark.parametrize(
    ("annotations", "names"),
    [
        ({"io.containerd.image.name": "docker.io/library/busybox:1"}, ["busybox:1"]),
        ({"org.opencontainers.image.ref.name": "quay.io/a/b:2"}, ["quay.io/a/b:2"]),
        ({"org.opencontainers.image.ref.name": "latest"}, []),
        ({"org.opencontainers.image.ref.name": "busybox@sha256:" + "1" * 64}, []),
        ({"org.opencontainers.image.ref.name": "Not A Name!"}, []),
    ],
)
def test_names_from_index_annotations(annotations: dict[str, str], names: list[str]) -> None:
    assert _names_from_annotations(annotations) == names


def _rewrite_member(data: bytes, name: str, content: bytes) -> bytes:
    members = []
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            f = t.extractfile(m)
            members.append((m.name, content if m.name == name else (f.read() if f else b"")))
    return outer_tar(members)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([], "invalid manifest, layers length mismatch: expected 1, got 0"),
        (["x/layer.tar", "y/layer.tar"], "layers length mismatch: expected 1, got 2"),
        (["blobs/sha256/" + "0" * 64], "layer 0 is 'blobs/sha256/0000"),
    ],
)
def test_docker_archive_layers_must_match_the_config(
    images: FakeImages, tmp_path: Path, layers: list[str], message: str
) -> None:
    """A docker-archive with an OCI layout inside (as `docker save` writes
    since Docker 25): Docker reads only manifest.json, so an entry whose
    Layers do not match the config's diff_ids must not load from index.json
    either (issue 9, item 7)."""
    data, _config, _blob = docker_archive()
    load(images, io.BytesIO(data))  # type: ignore[arg-type]
    out = io.BytesIO()
    save(images, ["busybox:latest"], out, format="docker-archive")  # type: ignore[arg-type]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    manifest[0]["Layers"] = layers
    hostile = _rewrite_member(out.getvalue(), "manifest.json", json.dumps(manifest).encode())
    other = FakeImages(tmp_path / "other")
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        load(other, io.BytesIO(hostile))  # type: ignore[arg-type]
    assert other.records == {}
    # The same archive, untouched, loads.
    assert load(other, io.BytesIO(out.getvalue()))  # type: ignore[arg-type]
