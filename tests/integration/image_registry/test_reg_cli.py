"""`portique pull/push/login/logout` as processes: output, exit codes, races, kills."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from portique.image.images import Images
from support import oci_build as ob
from support.registry import Registry, RegistryProxy

PORTIQUE = [sys.executable, "-m", "portique"]


def portique(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PORTIQUE, *args], env=env, capture_output=True, text=True, input=input, timeout=timeout
    )


def test_pull_output_like_docker(
    registry_plain: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    img = ob.whiteout_image()
    ob.push_image(registry_plain, repo_name, "latest", img)
    name = f"{registry_plain.host}/{repo_name}"
    r = portique(cli_env, "pull", name)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Using default tag: latest"
    assert lines[1] == f"latest: Pulling from {repo_name}"
    for layer in img.layers:
        assert f"{layer.digest[7:19]}: Pull complete" in lines
    assert lines[-3:] == [
        f"Digest: {img.manifest_digest}",
        f"Status: Downloaded newer image for {name}:latest",
        f"{name}:latest",
    ]
    # Piped: no progress bars, no escape sequences.
    assert "\x1b" not in r.stdout
    assert "Downloading" not in r.stdout
    r = portique(cli_env, "pull", f"{name}:latest")
    assert r.stdout.splitlines() == [
        f"latest: Pulling from {repo_name}",
        f"Digest: {img.manifest_digest}",
        f"Status: Image is up to date for {name}:latest",
        f"{name}:latest",
    ]
    r = portique(cli_env, "pull", "-q", f"{name}@{img.manifest_digest}")
    assert (r.returncode, r.stdout) == (0, f"{name}@{img.manifest_digest}\n")


def test_pull_errors_are_one_line(
    registry_plain: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    r = portique(cli_env, "pull", "-q", f"{registry_plain.host}/{repo_name}-missing:v1")
    assert r.returncode == 125
    assert r.stderr == (
        f"portique: manifest for {registry_plain.host}/{repo_name}-missing:v1 not found: "
        "manifest unknown: manifest unknown\n"
    )
    r = portique(cli_env, "pull", "Bad/Name")
    assert r.returncode == 125
    assert r.stderr.startswith(
        "portique: invalid reference format: repository name must be lowercase"
    )
    assert len(r.stderr.splitlines()) == 1


def test_login_logout_basic_and_token(
    registry_basic: Registry, registry_token: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    config = Path(cli_env["DOCKER_CONFIG"]) / "config.json"
    for reg in (registry_basic, registry_token):
        ob.push_image(reg, repo_name, "v1", ob.busybox_image())
        name = f"{reg.host}/{repo_name}:v1"
        if reg.mode == "basic":
            r = portique(cli_env, "pull", "-q", name)
            assert r.returncode == 125
            assert "unauthorized" in r.stderr
            assert "portique login" in r.stderr
        r = portique(
            cli_env, "login", "-u", "testuser", "--password-stdin", reg.host, input="wrong\n"
        )
        assert r.returncode == 125
        assert "incorrect username or password" in r.stderr or "unauthorized" in r.stderr
        assert not config.exists() or reg.host not in config.read_text()
        r = portique(
            cli_env, "login", "-u", "testuser", "--password-stdin", reg.host, input="testpassword\n"
        )
        assert (r.returncode, r.stdout) == (0, "Login Succeeded\n"), r.stderr
        auth = json.loads(config.read_text())["auths"][reg.host]["auth"]
        assert base64.b64decode(auth) == b"testuser:testpassword"
        assert config.stat().st_mode & 0o077 == 0
        r = portique(cli_env, "pull", "-q", name)
        assert r.returncode == 0, r.stderr
        r = portique(cli_env, "logout", reg.host)
        assert r.stdout == f"Removing login credentials for {reg.host}\n"
        assert reg.host not in json.loads(config.read_text())["auths"]
        r = portique(cli_env, "logout", reg.host)
        assert r.stdout == f"Not logged in to {reg.host}\n"


def test_push_output(
    registry_plain: Registry, registry_basic: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    img = ob.busybox_image()
    ob.push_image(registry_plain, repo_name, "v1", img)
    src = f"{registry_plain.host}/{repo_name}:v1"
    dest = f"{registry_basic.host}/{repo_name}:pushed"
    assert portique(cli_env, "pull", "-q", src).returncode == 0
    assert portique(cli_env, "tag", src, dest).returncode == 0
    r = portique(cli_env, "login", "-u", "testuser", "-p", "testpassword", registry_basic.host)
    assert r.returncode == 0, r.stderr
    assert "--password-stdin" in r.stderr  # Docker's warning about -p
    r = portique(cli_env, "push", dest)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{registry_basic.host}/{repo_name}]"
    assert f"{img.layers[0].digest[7:19]}: Pushed" in lines
    assert lines[-1] == f"pushed: digest: {img.manifest_digest} size: {len(img.manifest)}"


def _wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_concurrent_pulls_fetch_each_blob_once(
    fresh_registry: Callable[..., Registry], cli_env: dict[str, str]
) -> None:
    reg = fresh_registry("plain")
    img = ob.random_image(layers=4, layer_size=2 << 20, seed=11)
    ob.push_image(reg, "race", "v1", img)
    before = len(reg.requests())
    procs = [
        subprocess.Popen(
            [*PORTIQUE, "pull", "-q", f"{reg.host}/race:v1"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == f"{reg.host}/race:v1\n"
    gets = Counter(
        path.rsplit("/", 1)[1]
        for method, path, status in reg.settled_requests()[before:]
        if method == "GET" and "/blobs/" in path and status == 200
    )
    assert gets == Counter({d: 1 for d, _ in img.blobs()})
    images = Images(Path(cli_env["PORTIQUE_ROOT"]))
    try:
        assert images.resolve(f"{reg.host}/race:v1").manifest_digest == img.manifest_digest
    finally:
        images.close()


def test_pull_killed_midway_then_repeated(
    registry_plain: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    img = ob.random_image(layers=2, layer_size=4 << 20, seed=5)
    ob.push_image(registry_plain, repo_name, "v1", img)
    # Slow enough that the kill lands mid-download.
    proxy = RegistryProxy(registry_plain.url, throttle=0.05).start()
    root = Path(cli_env["PORTIQUE_ROOT"])
    ingest = root / "ingest"
    name = f"{proxy.host}/{repo_name}:v1"
    try:
        p = subprocess.Popen(
            [*PORTIQUE, "pull", "-q", name],
            env=cli_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Only this image's partials count: the root is shared with other tests,
        # which may have left partials of their own.
        ours = [ingest / f"sha256-{layer.digest[7:]}.part" for layer in img.layers]

        def started() -> bool:
            return any(f.exists() and f.stat().st_size > 0 for f in ours)

        try:
            _wait_for(started, 60, "the first downloaded bytes")
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        assert p.returncode == -signal.SIGKILL
        # Nothing half-downloaded is trusted.
        blobs = root / "blobs" / "sha256"
        for blob in blobs.iterdir() if blobs.exists() else []:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
        for layer in img.layers:
            assert not (blobs / layer.digest[7:]).exists()
        kept = {f.name: f.stat().st_size for f in ours if f.exists() and f.stat().st_size}
        assert kept
        # Again, at full speed: it resumes where the kill left off and completes.
        proxy.throttle = 0.0
        first = len(proxy.requests)
        r = portique(cli_env, "pull", "-q", name)
        assert r.returncode == 0, r.stderr
        ranges = [q.headers.get("Range") for q in proxy.requests[first:] if "/blobs/" in q.path]
        assert any(rng and rng != "bytes=0-" for rng in ranges), ranges
    finally:
        proxy.stop()
    images = Images(root)
    try:
        rec = images.resolve(name)
        assert rec.layers == img.diff_ids
        for digest in images.store.digests():
            with images.store.open(digest) as f:
                assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == digest
    finally:
        images.close()


def test_all_tags(
    registry_plain: Registry, registry_token: Registry, cli_env: dict[str, str], repo_name: str
) -> None:
    one, two = ob.busybox_image(), ob.whiteout_image()
    ob.push_image(registry_plain, repo_name, "one", one)
    ob.push_image(registry_plain, repo_name, "two", two)
    repo = f"{registry_plain.host}/{repo_name}"
    r = portique(cli_env, "pull", "-a", repo)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "one: Pulling from " + repo_name in lines
    assert "two: Pulling from " + repo_name in lines
    assert lines[-2:] == [f"Status: Downloaded newer image for {repo}", repo]
    r = portique(cli_env, "pull", "-a", f"{repo}:one")
    assert r.returncode == 125
    assert "can't be used with --all-tags" in r.stderr
    # Push every local tag of a repository to another registry.
    dest = f"{registry_token.host}/{repo_name}"
    for tag in ("one", "two"):
        assert portique(cli_env, "tag", f"{repo}:{tag}", f"{dest}:{tag}").returncode == 0
    r = portique(
        cli_env,
        "login",
        "-u",
        "testuser",
        "--password-stdin",
        registry_token.host,
        input="testpassword",
    )
    assert r.returncode == 0, r.stderr
    r = portique(cli_env, "push", "-a", "-q", dest)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{dest}@{one.manifest_digest}",
        f"{dest}@{two.manifest_digest}",
    ]
