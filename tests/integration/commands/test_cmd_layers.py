"""Images that hold the same layer twice (issue 13, item 1).

Two identical COPY lines, or a pulled or loaded image repeating a diff_id,
give an image whose lowerdir list would name one snapshot twice, which
overlay refuses (ELOOP). Docker runs and builds on all of them. `docker save`
(the legacy layout of dockerd 20.10) stores the repeated layer as a symlink
to the first: `load` follows such a link to another layer of the same
archive, and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from support.engine_cli import Portique

# A layer: (path, content) for files, (path, None) for directories; ".wh." names
# are OCI whiteouts, "DIR/.wh..wh..opq" an opaque marker.
Layer = Sequence[tuple[str, bytes | None]]


def _layer_tar(entries: Layer) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str, *, hard: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname, info.mtime = target, 1_700_000_000
    tar.addfile(info)


def _legacy_archive(
    path: Path,
    tag: str,
    layers: Sequence[bytes],
    links: dict[int, str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> None:
    """A docker-archive in dockerd 20.10's layout: <id>/layer.tar per layer, a
    repeated layer stored once and linked (`links`: layer index -> symlink target)."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(x) for x in layers]},
        }
    ).encode()
    config_name = _sha(config).removeprefix("sha256:") + ".json"
    names = [f"{hashlib.sha256(b'%d' % i).hexdigest()}/layer.tar" for i in range(len(layers))]
    with tarfile.open(path, "w") as tar:
        _add(tar, config_name, config)
        for i, (name, data) in enumerate(zip(names, layers, strict=True)):
            if links and i in links:
                _link(tar, name, links[i])
            else:
                _add(tar, name, data)
        for name, data in (extra or {}).items():
            _add(tar, name, data)
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())


def _busybox_layer(pq: Portique, tmp: Path) -> bytes:
    """The busybox image's one layer, uncompressed (from `save`)."""
    saved = tmp / "bb.tar"
    pq.ok("save", "-o", str(saved), "busybox")
    with tarfile.open(saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        f = tar.extractfile(manifest[0]["Layers"][0])
        assert f is not None
        data = f.read()
    import gzip

    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _layer_members(pq: Portique, image: str, tmp: Path) -> list[list[str]]:
    saved = tmp / "out.tar"
    pq.ok("save", "-o", str(saved), image)
    out = []
    with tarfile.open(saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            f = tar.extractfile(name)
            assert f is not None
            with tarfile.open(fileobj=io.BytesIO(f.read())) as layer:
                out.append(sorted(m.name.rstrip("/") for m in layer.getmembers()))
    return out


# ---- built images -------------------------------------------------------------------


def test_two_identical_copies_and_noop_runs_run_and_build_on(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nCOPY a.txt /a.txt\nCOPY a.txt /a.txt\nRUN true\nRUN true\nRUN true\n"
    )
    pq.ok("build", "--no-cache", "-t", "dup-layers", str(tmp_path), timeout=300)
    layers = json.loads(pq.inspect("dup-layers", "{{json .RootFS.Layers}}"))
    assert layers[1] == layers[2], "two identical COPY steps make one layer twice"
    assert pq.ok("run", "--rm", "dup-layers", "cat", "/a.txt") == "hello\n"
    # ... and a build can run steps on top of it.
    (tmp_path / "Dockerfile").write_text("FROM dup-layers\nRUN echo more >> /a.txt\n")
    pq.ok("build", "--no-cache", "-t", "dup-layers-2", str(tmp_path), timeout=300)
    assert pq.ok("run", "--rm", "dup-layers-2", "cat", "/a.txt") == "hello\nmore\n"


def test_noop_runs_carry_no_mount_points(pq: Portique, tmp_path: Path) -> None:
    # A base without /dev, /proc, /sys: the runtime makes them as mount points
    # in the step's upper dir, and they are not the step's content.
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    import shutil

    shutil.copy2("/bin/busybox", bare / "bin/busybox")
    for applet in ("sh", "true", "mkdir"):
        (bare / "bin" / applet).symlink_to("busybox")
    with tarfile.open(tmp_path / "bare.tar", "w") as tar:
        tar.add(bare / "bin", arcname="bin")
    pq.ok("import", str(tmp_path / "bare.tar"), "bare-base")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        'FROM bare-base\nRUN ["/bin/true"]\nRUN ["/bin/true"]\n'
        'RUN ["/bin/sh", "-c", "mkdir -p /dev/x /made && echo x > /made/f"]\n'
    )
    pq.ok("build", "--no-cache", "-t", "bare-built", str(ctx), timeout=300)
    layers = _layer_members(pq, "bare-built", tmp_path)
    # The no-op steps add no layer (empty_layer in the history, as Docker's builder);
    # the last one only what it made (its /dev/x is under the step's /dev tmpfs).
    assert layers[1:] == [["made", "made/f"]]
    history = json.loads(pq.inspect("bare-built", "{{json .RootFS.Layers}}"))
    assert len(history) == 2
    out = pq.ok("run", "--rm", "bare-built", "/bin/sh", "-c", "echo /made/*")
    assert out == "/made/f\n"


# ---- repeated layers with whiteouts between them ----------------------------------------

X: Layer = [("f", b"x\n"), ("d", None), ("d/x", b"dx\n")]
Y: Layer = [(".wh.f", b""), ("d", None), ("d/.wh..wh..opq", b""), ("d/y", b"dy\n")]


def _apply(layers: Sequence[Layer]) -> dict[str, bytes | None]:
    """The OCI image spec's changeset application, bottom layer first: the oracle."""
    tree: dict[str, bytes | None] = {}
    for layer in layers:
        for name, _data in layer:
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                for k in [k for k in tree if k.startswith(parent + "/")]:
                    del tree[k]
            elif base.startswith(".wh."):
                gone = f"{parent}/{base[4:]}" if parent else base[4:]
                for k in [k for k in tree if k == gone or k.startswith(gone + "/")]:
                    del tree[k]
        tree.update(
            (name, data) for name, data in layer if not name.rpartition("/")[2].startswith(".wh.")
        )
    return tree


@pytest.mark.parametrize("order", ["XYX", "YXY", "XXY", "YXX"])
def test_repeated_layer_with_whiteouts_between(pq: Portique, tmp_path: Path, order: str) -> None:
    chosen = [X if c == "X" else Y for c in order]
    base = _busybox_layer(pq, tmp_path)
    archive = tmp_path / "img.tar"
    tag = f"wh-{order.lower()}:latest"
    _legacy_archive(archive, tag, [base, *(_layer_tar(layer) for layer in chosen)])
    pq.ok("load", "-i", str(archive))
    want = _apply(chosen)
    script = (
        "for p in f d d/x d/y; do if [ -d /$p ]; then echo $p/; elif [ -e /$p ]; then "
        'echo "$p=$(cat /$p)"; fi; done'
    )
    got = pq.ok("run", "--rm", tag, "sh", "-c", script).splitlines()
    expected = [
        f"{k}/" if v is None else f"{k}={v.decode().strip()}"
        for k in ("f", "d", "d/x", "d/y")
        if k in want
        for v in [want[k]]
    ]
    assert got == expected


# ---- load: links in a docker-save archive -----------------------------------------------


def test_load_follows_a_link_to_another_layer(pq: Portique, tmp_path: Path) -> None:
    base = _busybox_layer(pq, tmp_path)
    extra = _layer_tar([("a.txt", b"linked\n")])
    first = f"{hashlib.sha256(b'1').hexdigest()}/layer.tar"
    for hard in (False, True):
        archive = tmp_path / f"linked-{hard}.tar"
        target = first if hard else f"../{first}"
        tag = f"linked-{'hard' if hard else 'sym'}:latest"
        _legacy_archive(archive, tag, [base, extra, extra], links={2: target})
        if hard:  # rewrite the symlink as a hard link naming the member from the root
            _rewrite_link_as_hard(archive)
        out = pq.ok("load", "-i", str(archive))
        assert f"Loaded image: {tag.removesuffix(':latest')}" in out
        assert pq.ok("run", "--rm", tag, "cat", "/a.txt") == "linked\n"


def _rewrite_link_as_hard(archive: Path) -> None:
    data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(archive, "w") as out:
        for m in src.getmembers():
            if m.issym():
                m.type = tarfile.LNKTYPE
                m.linkname = m.linkname.removeprefix("../")
                out.addfile(m)
            else:
                out.addfile(m, src.extractfile(m))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("outside", "outside the archive"),
        ("absolute", "outside the archive"),
        ("config", "which is no layer"),
        ("other-member", "which is no layer"),
        ("chain", "which is not a regular file"),
        ("loop", "which is not a regular file"),
        ("missing", "which it does not hold"),
        ("self", "links to itself"),
    ],
)
def test_load_refuses_hostile_layer_links(
    pq: Portique, tmp_path: Path, case: str, message: str
) -> None:
    base = _busybox_layer(pq, tmp_path)
    extra = _layer_tar([("a.txt", b"x\n")])
    ids = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(4)]
    layers = [base, extra, extra, extra]
    config_name = ""
    links: dict[int, str] = {}
    extra_members: dict[str, bytes] = {}
    if case == "outside":
        links = {2: "../../../../etc/passwd"}
    elif case == "absolute":
        links = {2: "/etc/passwd"}
    elif case == "other-member":
        # A member that is a layer tar of the right content, but no manifest names it.
        extra_members = {"spare/layer.tar": extra}
        links = {2: "../spare/layer.tar"}
    elif case == "chain":
        links = {2: f"../{ids[1]}/layer.tar", 3: f"../{ids[2]}/layer.tar"}
    elif case == "loop":
        links = {2: f"../{ids[3]}/layer.tar", 3: f"../{ids[2]}/layer.tar"}
    elif case == "missing":
        links = {2: "../nothing/layer.tar"}
    elif case == "self":
        links = {2: "layer.tar"}
    archive = tmp_path / "hostile.tar"
    if case == "config":
        # The config is a member too: a layer linking to it is refused by name.
        config_name = "CONFIG"
    _legacy_archive(archive, f"hostile-{case}:latest", layers, links, extra_members)
    if config_name:
        _relink_to_config(archive)
    r = pq("load", "-i", str(archive))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert f"hostile-{case}" not in pq.ok("images", "--format", "{{.Repository}}")


def _relink_to_config(archive: Path) -> None:
    """Layer 2 becomes a symlink to the archive's config document."""
    data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(archive, "w") as out:
        members = src.getmembers()
        config = next(m.name for m in members if m.name.endswith(".json") and "/" not in m.name)
        layer2 = f"{hashlib.sha256(b'2').hexdigest()}/layer.tar"
        for m in members:
            if m.name == layer2:
                _link(out, layer2, f"../{config}")
            else:
                out.addfile(m, src.extractfile(m) if m.isfile() else None)
