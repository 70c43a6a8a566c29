"""The image verbs end to end: the real `portique` CLI over a fresh engine root.

Images come from `portique import` of a busybox rootfs, from OCI layouts that
support.oci_build writes, and from skopeo (an independent implementation of both
archive formats).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from support import oci_build as ob

SKOPEO = "/usr/bin/skopeo"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def portique(root: Path) -> Run:
    """Run `portique ARGS` against a private engine root; check=True by default."""

    def run(
        *args: str, check: bool = True, stdin: bytes | None = None, stdout: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PORTIQUE_ROOT": str(root)}
        proc = subprocess.run(
            [sys.executable, "-m", "portique", *args],
            input=stdin,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
        done = subprocess.CompletedProcess(
            proc.args, proc.returncode, (proc.stdout or b"").decode(), proc.stderr.decode()
        )
        if check and done.returncode != 0:
            raise AssertionError(f"portique {' '.join(args)} -> {done.returncode}\n{done.stderr}")
        return done

    return run


@pytest.fixture
def busybox_tar(tmp_path: Path, busybox_rootfs: Path) -> Path:
    out = tmp_path / "busybox.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(out), "."], check=True)
    return out


def inspect(portique: Run, name: str) -> dict[str, object]:
    doc = json.loads(portique("image", "inspect", name).stdout)
    assert isinstance(doc, list)
    assert len(doc) == 1
    return doc[0]  # type: ignore[no-any-return]


def skopeo(*args: str) -> None:
    subprocess.run(
        [SKOPEO, "--insecure-policy", *args], check=True, capture_output=True, timeout=120
    )


def test_import_then_inspect_shows_the_cmd(portique: Run, busybox_tar: Path) -> None:
    out = portique(
        "import",
        "--change",
        'CMD ["/bin/sh"]',
        "-c",
        "ENV A=1",
        "-m",
        "made here",
        str(busybox_tar),
        "busybox:latest",
    ).stdout
    image_id = out.strip()
    assert image_id.startswith("sha256:")
    assert len(image_id) == 71
    doc = inspect(portique, "busybox:latest")
    assert doc["Id"] == image_id
    assert doc["RepoTags"] == ["busybox:latest"]
    config = doc["Config"]
    assert isinstance(config, dict)
    assert config["Cmd"] == ["/bin/sh"]
    assert config["Env"] == ["A=1"]
    assert doc["Comment"] == "made here"
    assert doc["RootFS"]["Layers"][0].startswith("sha256:")  # type: ignore[index]
    assert doc["Os"] == "linux"
    fmt = portique("image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "busybox").stdout
    assert fmt == f'{image_id} ["/bin/sh"]\n'
    history = portique("history", "busybox").stdout.splitlines()
    assert re.fullmatch(r"IMAGE +CREATED +CREATED BY +SIZE +COMMENT", history[0])
    assert history[1].startswith(image_id[7:19])
    assert history[1].rstrip().endswith("made here")
    assert len(history) == 2
    sizes = portique("image", "history", "--format", "{{.Size}}", "-H=false", "busybox").stdout
    assert int(sizes) > 1_000_000  # the busybox binary, unpacked


def test_import_from_stdin_untagged_and_url_refused(portique: Run, busybox_tar: Path) -> None:
    proc = portique("import", "-", stdin=busybox_tar.read_bytes())
    image_id = proc.stdout.strip()
    assert portique("images", "-q", "--filter", "dangling=true").stdout.split() == [image_id[7:19]]
    bad = portique("import", "http://example.com/rootfs.tar", check=False)
    assert bad.returncode == 125
    assert bad.stderr.count("\n") == 1
    assert "file or stdin only" in bad.stderr


def test_images_tag_rmi_prune_output(portique: Run, busybox_tar: Path) -> None:
    image_id = portique("import", str(busybox_tar), "busybox:latest").stdout.strip()
    short = image_id[7:19]
    portique("tag", "busybox", "example.com/team/app:v1")
    lines = portique("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert re.fullmatch(r"REPOSITORY +TAG {7}IMAGE ID {7}CREATED +SIZE", lines[0])
    rows = sorted(line.split()[:3] for line in lines[1:])
    assert rows == [["busybox", "latest", short], ["example.com/team/app", "v1", short]]
    assert portique("images", "-q").stdout.split() == [short]
    digests = portique("images", "--digests").stdout.splitlines()
    assert digests[0].split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert digests[1].split()[2] == "<none>"
    assert portique("images", "--no-trunc", "-q").stdout.split() == [image_id]
    fmt = portique("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox").stdout
    assert fmt == "busybox:latest\n"
    table = portique("images", "--format", r"table {{.ID}}\t{{.Tag}}", "busybox").stdout
    assert table.splitlines() == ["IMAGE ID       TAG", f"{short}   latest"]
    js = [json.loads(x) for x in portique("images", "--format", "json").stdout.splitlines()]
    assert {j["Repository"] for j in js} == {"busybox", "example.com/team/app"}
    by_ref = portique("images", "--filter", "reference=example.com/*/*").stdout.splitlines()
    assert len(by_ref) == 2
    assert by_ref[1].startswith("example.com/team/app")
    assert portique("images", "--filter", "bogus=1", check=False).returncode == 125

    # rmi of one of two tags only untags; of the last one deletes.
    assert portique("rmi", "busybox").stdout == "Untagged: busybox:latest\n"
    lines = portique("image", "rm", "example.com/team/app:v1").stdout.splitlines()
    assert lines == ["Untagged: example.com/team/app:v1", f"Deleted: {image_id}"]
    assert portique("images", "-q").stdout == ""
    # A missing image named by the user: Docker's words and status, for every verb.
    for verb in (["rmi"], ["image", "inspect"], ["history"], ["tag"], ["save"]):
        args = [*verb, "nosuch", *(["other:tag"] if verb == ["tag"] else [])]
        missing = portique(*args, check=False)
        assert (missing.returncode, missing.stderr) == (1, "Error: No such image: nosuch\n"), verb
    assert portique("image", "inspect", "nosuch", check=False).stdout == "[]\n"
    forced = portique("rmi", "-f", "nosuch", check=False)  # said, but no failure (Docker)
    assert (forced.returncode, forced.stderr) == (0, "Error: No such image: nosuch\n")

    # prune: a dangling image goes, a tagged one stays unless -a.
    dangling = portique("import", str(busybox_tar)).stdout.strip()
    portique("import", "-c", "USER nobody", str(busybox_tar), "kept:1")
    out = portique("image", "prune", "-f").stdout
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: ")
    assert portique("images", "-q").stdout.count("\n") == 1
    declined = portique("image", "prune", "-a", stdin=b"n\n")
    assert "Are you sure you want to continue? [y/N]" in declined.stdout
    assert portique("images", "-q").stdout.count("\n") == 1
    out = portique("image", "prune", "-a", stdin=b"y\n").stdout
    assert "deleted: sha256:" in out
    assert portique("images", "-q").stdout == ""


def test_save_refuses_a_terminal(portique: Run, busybox_tar: Path) -> None:
    portique("import", str(busybox_tar), "busybox:latest")
    primary, secondary = pty.openpty()
    try:
        proc = portique("save", "busybox", check=False, stdout=secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 125
    assert "cowardly refusing to save to a terminal" in proc.stderr


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_load_round_trip_keeps_ids_and_digests(
    portique: Run, tmp_path: Path, fmt: str
) -> None:
    img = ob.whiteout_image()  # 3 gzip layers, with whiteouts
    layout = ob.write_oci_layout(tmp_path / "layout", img, tag="v1")
    src = tmp_path / "src.tar"
    skopeo("copy", f"oci:{layout}:v1", f"oci-archive:{src}:demo/wh:v1")
    assert portique("load", "-i", str(src)).stdout == "Loaded image: demo/wh:v1\n"
    before = inspect(portique, "demo/wh:v1")
    assert before["Id"] == img.config_digest
    assert before["RootFS"]["Layers"] == img.diff_ids  # type: ignore[index]

    archive = tmp_path / f"saved-{fmt}.tar"
    portique("save", "--format", fmt, "-o", str(archive), "demo/wh:v1")
    with tarfile.open(archive) as t:
        names = set(t.getnames())
        index = json.load(t.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["digest"] == img.manifest_digest
    assert all(f"blobs/sha256/{layer.digest[7:]}" in names for layer in img.layers)
    assert ("manifest.json" in names) == (fmt == "docker-archive")

    portique("rmi", "demo/wh:v1")
    assert portique("images", "-q").stdout == ""
    assert portique("load", "-q", "-i", str(archive)).stdout == "Loaded image: demo/wh:v1\n"
    after = inspect(portique, "demo/wh:v1")
    assert after["Id"] == img.config_digest
    assert after["RootFS"]["Layers"] == img.diff_ids  # type: ignore[index]

    # And skopeo, an independent reader, accepts what we wrote.
    transport = "docker-archive" if fmt == "docker-archive" else "oci-archive"
    out = subprocess.run(
        [SKOPEO, "inspect", "--raw", f"{transport}:{archive}"], check=True, capture_output=True
    ).stdout
    assert json.loads(out)["config"]["digest"] == img.config_digest


def test_load_skopeo_docker_archive_from_stdin(portique: Run, tmp_path: Path) -> None:
    img = ob.busybox_image()
    layout = ob.write_oci_layout(tmp_path / "layout", img, tag="latest")
    archive = tmp_path / "docker.tar"
    skopeo("copy", f"oci:{layout}:latest", f"docker-archive:{archive}:skopeo/bb:v2")
    proc = portique("load", stdin=archive.read_bytes())
    assert proc.stdout == "Loaded image: skopeo/bb:v2\n"
    doc = inspect(portique, "skopeo/bb:v2")
    assert doc["Id"] == img.config_digest
    assert doc["Config"]["Cmd"] == ["/bin/sh"]  # type: ignore[index]


def test_load_untagged_oci_layout_prints_id_and_picks_host_platform(
    portique: Run, tmp_path: Path
) -> None:
    idx = ob.multiarch_index()
    layout = ob.write_oci_layout(tmp_path / "layout", idx)
    archive = tmp_path / "multi.tar"
    with tarfile.open(archive, "w") as t:
        t.add(layout, arcname=".")
    proc = portique("load", "-i", str(archive))
    amd64 = next(i for i in idx.images if json.loads(i.config)["architecture"] == "amd64")
    assert proc.stdout == f"Loaded image ID: {amd64.config_digest}\n"
    arm64 = next(i for i in idx.images if json.loads(i.config)["architecture"] == "arm64")
    proc = portique("load", "--platform", "linux/arm64", "-i", str(archive))
    assert proc.stdout == f"Loaded image ID: {arm64.config_digest}\n"
    assert portique("image", "inspect", "-f", "{{.Architecture}}", arm64.config_digest).stdout == (
        "arm64\n"
    )


def test_load_refuses_a_tampered_archive(portique: Run, tmp_path: Path) -> None:
    img = ob.busybox_image()
    layout = ob.write_oci_layout(tmp_path / "layout", img, tag="latest")
    ob.corrupt(layout / "blobs/sha256" / img.layers[0].digest[7:])
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as t:
        t.add(layout, arcname=".")
    proc = portique("load", "-i", str(archive), check=False)
    assert proc.returncode == 1  # docker load's status
    assert proc.stderr.count("\n") == 1
    assert img.layers[0].digest in proc.stderr
    assert portique("images", "-q", "-a").stdout == ""


def test_label_filter_and_save_piped_into_load(
    portique: Run, busybox_tar: Path, tmp_path: Path
) -> None:
    labelled = portique("import", "-c", "LABEL team=core", str(busybox_tar), "a:1").stdout.strip()
    portique("import", "-c", "LABEL team=edge", "-c", "USER 1", str(busybox_tar), "b:1")
    assert portique("images", "-q", "--filter", "label=team=core").stdout.split() == [
        labelled[7:19]
    ]
    assert len(portique("images", "-q", "--filter", "label=team").stdout.split()) == 2
    assert portique("images", "-q", "--filter", "label=team=none").stdout == ""
    assert portique("images", "-q", "--filter", "until=1h").stdout == ""
    assert len(portique("images", "-q", "--filter", "until=2999-01-01").stdout.split()) == 2

    saved = subprocess.run(
        [sys.executable, "-m", "portique", "save", "a:1", "b:1"],
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "PORTIQUE_ROOT": str(tmp_path / "root")},
    ).stdout
    other = subprocess.run(
        [sys.executable, "-m", "portique", "load"],
        input=saved,
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "PORTIQUE_ROOT": str(tmp_path / "other")},
    ).stdout.decode()
    assert sorted(other.splitlines()) == ["Loaded image: a:1", "Loaded image: b:1"]


def test_prune_with_label_and_until_filters(portique: Run, busybox_tar: Path) -> None:
    core = portique("import", "-c", "LABEL team=core", str(busybox_tar), "a:1").stdout.strip()
    portique("import", "-c", "LABEL team=edge", str(busybox_tar), "b:1")
    # Everything was created just now: nothing is older than an hour.
    out = portique("image", "prune", "-a", "-f", "--filter", "until=1h").stdout
    assert out == "Total reclaimed space: 0B\n"
    out = portique("image", "prune", "-a", "-f", "--filter", "label=team=core").stdout
    assert out.startswith(f"Deleted Images:\nuntagged: a:1\ndeleted: {core}\n\n")
    assert "Total reclaimed space: " in out
    assert out.splitlines()[-1] != "Total reclaimed space: 0B"
    assert portique("images", "--format", "{{.Repository}}").stdout == "b\n"
    bad = portique("image", "prune", "-f", "--filter", "until=someday", check=False)
    assert bad.returncode == 125


def test_two_concurrent_loads_of_one_archive(portique: Run, root: Path, tmp_path: Path) -> None:
    img = ob.whiteout_image()
    layout = ob.write_oci_layout(tmp_path / "layout", img, tag="demo/wh:v1")
    archive = tmp_path / "wh.tar"
    with tarfile.open(archive, "w") as t:
        t.add(layout, arcname=".")
    env = {**os.environ, "PORTIQUE_ROOT": str(root)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "portique", "load", "-i", str(archive)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == b"Loaded image: demo/wh:v1\n"
    assert portique("images", "-q", "-a").stdout.split() == [img.config_digest[7:19]]
    assert inspect(portique, "demo/wh:v1")["RootFS"]["Layers"] == img.diff_ids  # type: ignore[index]
