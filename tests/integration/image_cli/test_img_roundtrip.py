"""pull -> save -> load -> push -> pull against real registries, keeping every digest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import oci_build as ob
from support.registry import start_registry


def portique(root: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "portique", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTIQUE_ROOT": str(root)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"portique {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_pull_save_load_push_pull_keeps_every_digest(tmp_path: Path, fmt: str) -> None:
    img = ob.whiteout_image()
    with (
        start_registry(tmp_path, mode="plain") as src,
        start_registry(tmp_path, mode="token") as dst,
    ):
        ob.push_image(src, "wh", "v1", img)
        first = tmp_path / "first"
        portique(first, "pull", "-q", f"{src.host}/wh:v1")
        archive = tmp_path / "wh.tar"
        portique(first, "save", "--format", fmt, "-o", str(archive), f"{src.host}/wh:v1")

        second = tmp_path / "second"
        assert portique(second, "load", "-i", str(archive)) == f"Loaded image: {src.host}/wh:v1\n"
        doc = json.loads(portique(second, "image", "inspect", f"{src.host}/wh:v1"))[0]
        assert doc["Id"] == img.config_digest
        assert doc["RootFS"]["Layers"] == img.diff_ids
        assert doc["RepoDigests"] == [f"{src.host}/wh@{img.manifest_digest}"]

        portique(second, "tag", f"{src.host}/wh:v1", f"{dst.host}/copy:v2")
        # The token registry lets anonymous clients pull only: log in to push.
        login = subprocess.run(
            [
                sys.executable,
                "-m",
                "portique",
                "login",
                "-u",
                dst.username or "",
                "--password-stdin",
                dst.host,
            ],
            input=dst.password,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PORTIQUE_ROOT": str(second), "HOME": str(tmp_path)},
        )
        assert login.returncode == 0, login.stderr
        out = subprocess.run(
            [sys.executable, "-m", "portique", "push", f"{dst.host}/copy:v2"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PORTIQUE_ROOT": str(second), "HOME": str(tmp_path)},
        )
        assert out.returncode == 0, out.stderr
        assert f"v2: digest: {img.manifest_digest}" in out.stdout

        status, headers, _ = dst.request(
            "HEAD", "/v2/copy/manifests/v2", headers={"Accept": img.media_type}
        )
        assert status == 200
        assert headers["docker-content-digest"] == img.manifest_digest

        third = tmp_path / "third"
        portique(third, "pull", "-q", f"{dst.host}/copy:v2")
        again = json.loads(portique(third, "image", "inspect", f"{dst.host}/copy:v2"))[0]
        assert again["Id"] == img.config_digest
        assert again["RootFS"]["Layers"] == img.diff_ids
        assert again["RepoDigests"] == [f"{dst.host}/copy@{img.manifest_digest}"]
