"""Images through `portique serve` with the real docker CLI: pull and push
against a real registry (anonymous and with `docker login`), images, inspect,
history, tag, rmi, save/load, import, prune, search; hostile requests get a
4xx and change nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from support import oci_build as ob
from support.api_server import ApiServer
from support.registry import TEST_PASSWORD, TEST_USER, Registry, start_registry

pytestmark = [pytest.mark.registry, pytest.mark.compat]


def _messages(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(p) for p in (task / "children").read_text().split()}
    return out


def _tags(srv: ApiServer) -> set[str]:
    return {t for img in srv.json("GET", "/images/json") for t in img["RepoTags"]}


def test_pull_with_the_cli_then_up_to_date(srv: ApiServer, registry: Registry) -> None:
    img = ob.busybox_image()
    ob.push_image(registry, "pulled", "v1", img)
    ref = f"{registry.host}/pulled:v1"
    first = srv.docker("pull", ref, check=True)
    assert "v1: Pulling from pulled" in first.stdout
    assert "Pull complete" in first.stdout
    assert f"Status: Downloaded newer image for {ref}" in first.stdout
    again = srv.docker("pull", ref, check=True)
    assert f"Digest: {img.manifest_digest}" in again.stdout
    assert f"Status: Image is up to date for {ref}" in again.stdout
    listed = srv.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=True)
    assert ref in listed.stdout.split()
    digests = srv.docker("image", "inspect", "-f", "{{json .RepoDigests}}", ref, check=True)
    assert f"{registry.host}/pulled@{img.manifest_digest}" in json.loads(digests.stdout)
    # The container the image gives runs.
    run = srv.pq("run", "--rm", ref, "echo", "from-pulled")
    assert run.stdout == "from-pulled\n", run.stderr


def test_pull_stream_is_docker_json(srv: ApiServer, registry: Registry) -> None:
    ob.push_image(registry, "stream", "latest", ob.busybox_image(compression="zstd"))
    status, headers, body = srv.request(
        "POST", f"/v1.41/images/create?fromImage={registry.host}/stream&tag=latest"
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    msgs = _messages(body)
    assert msgs[0] == {"status": "Pulling from stream", "id": "latest"}
    downloading = [m for m in msgs if m.get("status") == "Downloading"]
    assert downloading
    assert all(
        isinstance(m["progressDetail"], dict) and m["progressDetail"]["total"] > 0
        for m in downloading
    )
    assert msgs[-1]["status"] == f"Status: Downloaded newer image for {registry.host}/stream:latest"
    assert not [m for m in msgs if "error" in m]


def test_pull_of_a_missing_image_is_a_404(srv: ApiServer, registry: Registry) -> None:
    before = _tags(srv)
    status, _h, body = srv.request(
        "POST", f"/images/create?fromImage={registry.host}/nothing-here&tag=latest"
    )
    assert status == 404, body
    assert json.loads(body)["message"]
    cli = srv.docker("pull", f"{registry.host}/nothing-here:latest")
    assert cli.returncode == 1
    assert "Error response from daemon" in cli.stderr
    assert _tags(srv) == before


def test_push_then_pull_back(srv: ApiServer, registry: Registry) -> None:
    target = f"{registry.host}/pushed:v2"
    srv.docker("tag", "busybox:latest", target, check=True)
    pushed = srv.docker("push", target, check=True)
    assert f"The push refers to repository [{registry.host}/pushed]" in pushed.stdout
    assert "v2: digest: sha256:" in pushed.stdout
    digest = pushed.stdout.split("v2: digest: ")[1].split()[0]
    accept = "application/vnd.oci.image.manifest.v1+json, " + (
        "application/vnd.docker.distribution.manifest.v2+json"
    )
    status, _h, manifest = registry.request(
        "GET", f"/v2/pushed/manifests/{digest}", headers={"Accept": accept}
    )
    assert status == 200, manifest
    srv.docker("rmi", target, check=True)
    assert target not in _tags(srv)
    srv.docker("pull", target, check=True)
    same = srv.docker("image", "inspect", "-f", "{{.Id}}", target, "busybox", check=True)
    first, second = same.stdout.split()
    assert first == second


def test_login_and_authenticated_push_pull(srv: ApiServer, tmp_path: Path) -> None:
    with start_registry(tmp_path, mode="basic") as reg:
        target = f"{reg.host}/private:v1"
        srv.docker("tag", "busybox:latest", target, check=True)
        refused = srv.docker("push", target)
        assert refused.returncode != 0
        assert "unauthorized" in (refused.stdout + refused.stderr).lower()
        bad = srv.docker("login", "-u", TEST_USER, "--password-stdin", reg.host, input="wrong\n")
        assert bad.returncode != 0
        assert "unauthorized" in bad.stderr.lower() or "401" in bad.stderr
        ok = srv.docker(
            "login", "-u", TEST_USER, "--password-stdin", reg.host, input=TEST_PASSWORD + "\n"
        )
        assert ok.returncode == 0, ok.stderr
        assert "Login Succeeded" in ok.stdout
        srv.docker("push", target, check=True)
        srv.docker("rmi", target, check=True)
        srv.docker("pull", target, check=True)
        assert target in _tags(srv)
        # POST /auth itself: Docker's answer.
        answer = srv.json(
            "POST",
            "/auth",
            {"username": TEST_USER, "password": TEST_PASSWORD, "serveraddress": reg.host},
        )
        assert answer["Status"] == "Login Succeeded"
        status, _h, body = srv.request(
            "POST", "/auth", {"username": TEST_USER, "password": "no", "serveraddress": reg.host}
        )
        assert status == 401, body
        srv.docker("rmi", target, check=True)


def test_history_tag_rmi(srv: ApiServer) -> None:
    hist = srv.json("GET", "/images/busybox/history")
    assert hist[0]["Id"].startswith("sha256:")
    assert "busybox:latest" in hist[0]["Tags"]
    srv.docker("tag", "busybox", "example.org/team/tool:1.0", check=True)
    inspected = srv.json("GET", "/images/example.org/team/tool:1.0/json")
    assert "example.org/team/tool:1.0" in inspected["RepoTags"]
    out = srv.docker("rmi", "example.org/team/tool:1.0", check=True)
    assert "Untagged: example.org/team/tool:1.0" in out.stdout
    missing = srv.docker("rmi", "example.org/team/tool:1.0")
    assert missing.returncode == 1
    assert "No such image: example.org/team/tool:1.0" in missing.stderr
    filtered = srv.docker("images", "--filter", "reference=busy*", "-q", check=True)
    assert len(set(filtered.stdout.split())) == 1


def test_save_load_and_import(srv: ApiServer, tmp_path: Path) -> None:
    srv.docker("tag", "busybox", "saved:one", check=True)
    archive = tmp_path / "saved.tar"
    srv.docker("save", "-o", str(archive), "saved:one", check=True)
    assert archive.stat().st_size > 100_000
    srv.docker("rmi", "saved:one", check=True)
    loaded = srv.docker("load", "-i", str(archive), check=True)
    assert "Loaded image: saved:one" in loaded.stdout
    assert "saved:one" in _tags(srv)
    # GET /images/get with several names, then load it through the raw API.
    status, headers, data = srv.request("GET", "/images/get?names=saved:one&names=busybox")
    assert status == 200
    assert headers["content-type"] == "application/x-tar"
    srv.docker("rmi", "saved:one", check=True)
    status, _h, body = srv.request(
        "POST", "/images/load?quiet=1", data, {"Content-Type": "application/x-tar"}
    )
    assert status == 200, body
    assert any("saved:one" in str(m.get("stream")) for m in _messages(body))
    # docker import: a rootfs tarball as the body of POST /images/create?fromSrc=-.
    from support.api_server import busybox_tar

    rootfs = busybox_tar(tmp_path / "imp")
    imported = srv.docker("import", "-c", 'CMD ["/bin/true"]', str(rootfs), "imported:v1")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith("sha256:")
    cmd = srv.docker("image", "inspect", "-f", "{{json .Config.Cmd}}", "imported:v1", check=True)
    assert json.loads(cmd.stdout) == ["/bin/true"]
    srv.docker("rmi", "saved:one", "imported:v1", check=True)


def test_prune_and_search(srv: ApiServer, registry: Registry) -> None:
    ob.push_image(registry, "dangle", "v1", ob.random_image(layers=1, layer_size=4096, seed=7))
    srv.docker("pull", f"{registry.host}/dangle:v1", check=True)
    srv.docker("tag", "busybox", f"{registry.host}/dangle:v1", check=True)  # the pulled one dangles
    pruned = srv.docker("image", "prune", "-f", check=True)
    assert "deleted: sha256:" in pruned.stdout.lower()
    assert "Total reclaimed space:" in pruned.stdout
    searched = srv.docker("search", "busybox")
    assert searched.returncode == 1
    assert "no registry index is configured" in searched.stderr
    srv.docker("rmi", f"{registry.host}/dangle:v1", check=True)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/images/create?fromImage=a/../b&tag=latest", {}),
        ("POST", "/images/create?fromImage=busybox&tag=../../x", {}),
        ("POST", "/images/create?fromImage=", {}),
        ("POST", "/images/create?fromImage=Upper&tag=1", {}),
        ("POST", "/images/busybox/tag?repo=a/../b&tag=1", {}),
        ("POST", "/images/busybox/tag?repo=ok&tag=bad%2Ftag", {}),
        ("POST", "/images/busybox/tag", {}),
        ("POST", "/images/create?fromImage=busybox&tag=latest", {"X-Registry-Auth": "!!!"}),
        ("POST", "/images/create?fromImage=busybox&tag=1", {"X-Registry-Auth": "WzFd"}),
        ("GET", "/images/get", {}),
        ("POST", "/images/busybox/push?tag=..", {}),
        ("POST", "/images/prune?filters=%7B%22bogus%22%3A%5B%221%22%5D%7D", {}),
        ("POST", "/images/prune?filters=notjson", {}),
    ],
)
def test_bad_requests_are_4xx_and_change_nothing(
    srv: ApiServer, method: str, path: str, headers: dict[str, str]
) -> None:
    before = srv.json("GET", "/images/json?all=1")
    status, _h, body = srv.request(method, path, headers=headers)
    assert 400 <= status < 500, (status, body)
    message = json.loads(body)["message"]
    assert message
    assert "Traceback" not in message
    assert srv.json("GET", "/images/json?all=1") == before


def test_missing_images_are_404(srv: ApiServer) -> None:
    for method, path in [
        ("GET", "/images/nope:1/json"),
        ("GET", "/images/nope:1/history"),
        ("GET", "/images/nope:1/get"),
        ("GET", "/images/get?names=busybox&names=nope:1"),
        ("DELETE", "/images/nope:1"),
        ("POST", "/images/nope:1/tag?repo=x&tag=1"),
        ("POST", "/images/nope/push?tag=1"),
    ]:
        status, _h, body = srv.request(method, path)
        assert status == 404, (path, status, body)
        assert json.loads(body)["message"] == "No such image: nope:1", path


def test_hostile_load_is_refused(srv: ApiServer) -> None:
    before = srv.json("GET", "/images/json?all=1")
    status, _h, body = srv.request("POST", "/images/load", b"this is not a tar" * 100)
    assert 400 <= status < 500, body
    assert srv.json("GET", "/images/json?all=1") == before
    auth = base64.urlsafe_b64encode(json.dumps({"username": 3}).encode()).decode()
    status, _h, body = srv.request(
        "POST", "/images/create?fromImage=busybox&tag=1", headers={"X-Registry-Auth": auth}
    )
    assert status == 400
    assert "username must be a string" in json.loads(body)["message"]


def test_pull_all_tags(srv: ApiServer, registry: Registry) -> None:
    for tag in ("a", "b"):
        ob.push_image(registry, "alltags", tag, ob.busybox_image())
    out = srv.docker("pull", "-a", f"{registry.host}/alltags", check=True)
    assert f"Status: Downloaded newer image for {registry.host}/alltags" in out.stdout
    assert {f"{registry.host}/alltags:a", f"{registry.host}/alltags:b"} <= _tags(srv)
    srv.docker("rmi", f"{registry.host}/alltags:a", f"{registry.host}/alltags:b", check=True)


def test_client_gone_mid_pull_leaves_no_image(srv: ApiServer, registry: Registry) -> None:
    import socket

    img = ob.random_image(layers=3, layer_size=24 << 20, seed=11)
    ob.push_image(registry, "bigpull", "v1", img)
    assert srv.proc is not None
    idle = _children(srv.proc.pid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(srv.sock))
        s.sendall(
            f"POST /images/create?fromImage={registry.host}/bigpull&tag=v1 HTTP/1.1\r\n"
            "Host: docker\r\nContent-Length: 0\r\n\r\n".encode()
        )
        head = b""
        while b"Downloading" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    # The worker notices at its next progress message and exits, having
    # registered nothing.
    import time

    deadline = time.monotonic() + 120
    while _children(srv.proc.pid) - idle and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children(srv.proc.pid) - idle
    assert f"{registry.host}/bigpull:v1" not in _tags(srv)
    # The next pull completes (resuming what was verified).
    srv.docker("pull", f"{registry.host}/bigpull:v1", check=True)
    assert f"{registry.host}/bigpull:v1" in _tags(srv)
    srv.docker("rmi", f"{registry.host}/bigpull:v1", check=True)


def test_push_all_tags(srv: ApiServer, registry: Registry) -> None:
    for tag in ("x1", "x2"):
        srv.docker("tag", "busybox", f"{registry.host}/everytag:{tag}", check=True)
    out = srv.docker("push", "--all-tags", f"{registry.host}/everytag", check=True)
    assert "x1: digest: sha256:" in out.stdout
    assert "x2: digest: sha256:" in out.stdout
    status, _h, body = registry.request("GET", "/v2/everytag/tags/list")
    assert status == 200
    assert sorted(json.loads(body)["tags"]) == ["x1", "x2"]
    srv.docker("rmi", f"{registry.host}/everytag:x1", f"{registry.host}/everytag:x2", check=True)


def test_commit_with_the_cli(srv: ApiServer) -> None:
    srv.pq.ok("run", "--name", "tocommit", "busybox", "sh", "-c", "echo committed > /state")
    out = srv.docker(
        "commit", "-c", 'CMD ["cat", "/state"]', "-m", "from the API", "tocommit", "committed:1"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("sha256:")
    run = srv.pq("run", "--rm", "committed:1")
    assert run.stdout == "committed\n", run.stderr
    hist = srv.json("GET", "/images/committed:1/history")
    assert hist[0]["Comment"] == "from the API"
    missing = srv.docker("commit", "no-such-box", "x:1")
    assert missing.returncode == 1
    assert "No such container: no-such-box" in missing.stderr
    bad = srv.request("POST", "/commit?container=tocommit&repo=a/../b")
    assert bad[0] == 400
    srv.pq.ok("rm", "tocommit")
    srv.docker("rmi", "committed:1", check=True)
