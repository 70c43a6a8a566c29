"""Networks, volumes and `system df` through `portique serve` with the real
docker CLI; hostile bodies get a 4xx and leave nothing made."""

from __future__ import annotations

import json

import pytest

from support.api_server import ApiServer

pytestmark = pytest.mark.compat


def _networks(srv: ApiServer) -> set[str]:
    return {n["Name"] for n in srv.json("GET", "/networks")}


def _volumes(srv: ApiServer) -> set[str]:
    return {v["Name"] for v in srv.json("GET", "/volumes")["Volumes"]}


def test_network_lifecycle_with_the_cli(srv: ApiServer) -> None:
    # The container first (started by portique's CLI on the same root), so the
    # network's bridge comes up right after its subnet is chosen: other engine
    # roots on this host may route a free subnet meanwhile.
    cid = srv.pq.ok("run", "-d", "--name", "netjoin", "busybox", "sleep", "600").strip()
    made = srv.docker("network", "create", "--label", "tier=front", "frontnet", check=True)
    net_id = made.stdout.strip()
    assert len(net_id) == 64
    listed = srv.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}", check=True)
    assert {"bridge bridge", "host host", "none null", "frontnet bridge"} <= set(
        listed.stdout.splitlines()
    )
    only = srv.docker("network", "ls", "-q", "--filter", "label=tier=front", check=True)
    assert only.stdout.split() == [net_id[:12]]
    dup = srv.docker("network", "create", "frontnet")
    assert dup.returncode == 1
    assert "frontnet" in dup.stderr
    srv.docker("network", "connect", "--alias", "web", "frontnet", "netjoin", check=True)
    members = srv.json("GET", f"/networks/{net_id}")["Containers"]
    assert cid in members
    in_use = srv.docker("network", "rm", "frontnet")
    assert in_use.returncode == 1
    srv.docker("network", "disconnect", "frontnet", "netjoin", check=True)
    assert srv.json("GET", f"/networks/{net_id}")["Containers"] == {}
    srv.pq.ok("rm", "-f", "netjoin")
    srv.docker("network", "rm", "frontnet", check=True)
    assert "frontnet" not in _networks(srv)
    missing = srv.docker("network", "inspect", "frontnet")
    assert missing.returncode == 1
    assert "No such network: frontnet" in missing.stderr


def test_network_prune_keeps_used_and_filtered(srv: ApiServer) -> None:
    srv.docker("network", "create", "--label", "keep=1", "kept", check=True)
    srv.docker("network", "create", "gone1", check=True)
    srv.docker("network", "create", "gone2", check=True)
    out = srv.docker("network", "prune", "-f", "--filter", "label!=keep=1", check=True)
    assert {"gone1", "gone2"} <= set(out.stdout.split())
    assert "kept" in _networks(srv)
    assert not {"gone1", "gone2"} & _networks(srv)
    srv.docker("network", "rm", "kept", check=True)


def test_volume_lifecycle_with_the_cli(srv: ApiServer) -> None:
    srv.docker("volume", "create", "--label", "app=db", "data1", check=True)
    srv.docker("volume", "create", "data2", check=True)
    listed = srv.docker("volume", "ls", "-q", "--filter", "label=app=db", check=True)
    assert listed.stdout.split() == ["data1"]
    mount = srv.docker("volume", "inspect", "-f", "{{.Mountpoint}}", "data1", check=True)
    assert mount.stdout.strip() == str(srv.root / "volumes/data1/_data")
    srv.pq.ok(
        "run", "--name", "voluser", "-v", "data1:/data", "busybox", "sh", "-c", "echo hi > /data/f"
    )
    busy = srv.docker("volume", "rm", "data1")
    assert busy.returncode == 1
    assert "volume is in use" in busy.stderr
    df = srv.docker("system", "df", "-v", check=True)
    assert "data1" in df.stdout
    usage = srv.json("GET", "/system/df")
    vol = next(v for v in usage["Volumes"] if v["Name"] == "data1")
    assert vol["UsageData"]["RefCount"] == 1
    assert vol["UsageData"]["Size"] >= 3
    assert any(i["RepoTags"] == ["busybox:latest"] for i in usage["Images"])
    only_volumes = srv.json("GET", "/system/df?type=volume")
    assert only_volumes["Images"] is None
    assert only_volumes["Volumes"]
    srv.pq.ok("rm", "voluser")
    # CLI 23+ asks for named volumes with --all; older clients (API < 1.42) get
    # them without (dockerd's rule, portique's too).
    every = ["--all"] if srv.cli_major >= 23 else []
    pruned = srv.docker("volume", "prune", "-f", *every, check=True)
    assert {"data1", "data2"} <= set(pruned.stdout.split())
    assert not {"data1", "data2"} & _volumes(srv)
    missing = srv.docker("volume", "inspect", "data1")
    assert missing.returncode == 1
    assert "No such volume: data1" in missing.stderr


def test_system_df_with_the_cli(srv: ApiServer) -> None:
    out = srv.docker("system", "df", check=True)
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["TYPE", "TOTAL"]
    assert {line.split()[0] for line in lines[1:]} >= {"Images", "Containers", "Local", "Build"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/networks/create", b"{not json"),
        ("/networks/create", b"[1, 2]"),
        ("/networks/create", b""),
        ("/networks/create", {"Name": 7}),
        ("/networks/create", {"Name": "x1", "Labels": {"a": 1}}),
        ("/networks/create", {"Name": "x1", "Internal": "yes"}),
        ("/networks/create", {"Name": "x1", "Surprise": True}),
        ("/networks/create", {"Name": "x1", "IPAM": {"Config": [{"Subnet": "not-a-net"}]}}),
        ("/networks/create", {"Name": "x1", "IPAM": {"Config": "nope"}}),
        ("/networks/create", {"Name": "../x1"}),
        ("/networks/create", {"Name": "x1", "Driver": "overlay"}),
        ("/networks/create", {"Name": "x1", "EnableIPv6": True}),
        ("/networks/bridge/connect", {"Container": 5}),
        ("/networks/bridge/disconnect", {}),
        ("/volumes/create", {"Name": "../escape"}),
        ("/volumes/create", {"Name": "v/x"}),
        ("/volumes/create", {"Name": "ok1", "Driver": "nfs"}),
        ("/volumes/create", {"Name": "ok1", "Labels": ["a"]}),
        ("/volumes/create", {"Name": "ok1", "DriverOpts": {"type": "tmpfs"}}),
        ("/volumes/create", b"\xff\xfe"),
        ("/volumes/prune?filters=%7B%22until%22%3A%5B%221h%22%5D%7D", None),
        ("/networks/prune?filters=%7B%22dangling%22%3A%5B%221%22%5D%7D", None),
    ],
)
def test_hostile_bodies_are_4xx_and_make_nothing(
    srv: ApiServer, path: str, body: bytes | dict[str, object] | None
) -> None:
    nets, vols = _networks(srv), _volumes(srv)
    status, _h, data = srv.request("POST", path, body)
    assert 400 <= status < 500, (status, data)
    assert json.loads(data)["message"]
    assert _networks(srv) == nets
    assert _volumes(srv) == vols


def test_missing_objects_are_404(srv: ApiServer) -> None:
    for method, path, body in [
        ("GET", "/networks/nonet", None),
        ("DELETE", "/networks/nonet", None),
        ("POST", "/networks/nonet/connect", {"Container": "x"}),
        ("POST", "/networks/bridge/connect", {"Container": "nocontainer"}),
        ("GET", "/volumes/novol", None),
        ("DELETE", "/volumes/novol", None),
    ]:
        status, _h, data = srv.request(method, path, body)
        assert status == 404, (path, status, data)
        assert json.loads(data)["message"].startswith("No such ")


def test_system_prune_with_the_cli(srv: ApiServer) -> None:
    srv.docker("network", "create", "prunenet", check=True)
    srv.docker("volume", "create", "prunevol", check=True)
    cid = srv.pq.ok("create", "--name", "prunebox", "-v", "/anon", "busybox", "true").strip()
    anon = srv.pq.inspect(cid, "{{range .Mounts}}{{.Name}}{{end}}")
    built = srv.docker("build", "-q", "-", input="FROM busybox\nRUN echo dangling > /d\n")
    assert built.returncode == 0, built.stderr
    image_id = built.stdout.strip()
    out = srv.docker("system", "prune", "-f", "--volumes", "--all")
    assert out.returncode == 0, out.stderr
    assert "prunebox" not in srv.pq.ok("ps", "-a", "--format", "{{.Names}}")
    assert "prunenet" not in _networks(srv)
    # API 1.42+ (CLI 23+): only anonymous volumes go; named ones need
    # `volume prune -a`. Older clients get every unused volume pruned.
    assert anon not in _volumes(srv)
    if srv.cli_major >= 23:
        assert "prunevol" in _volumes(srv)
        srv.docker("volume", "rm", "prunevol", check=True)
    assert "prunevol" not in _volumes(srv)
    assert image_id not in {i["Id"] for i in srv.json("GET", "/images/json?all=1")}
    assert "Total reclaimed space:" in out.stdout
    assert "busybox:latest" not in {
        t for i in srv.json("GET", "/images/json") for t in i["RepoTags"]
    }
    # Put busybox back for the tests that follow.
    from support.api_server import busybox_tar

    tar = busybox_tar(srv.base / "again")
    srv.pq.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest")


def test_huge_bodies_are_refused(srv: ApiServer) -> None:
    import socket

    nets, vols = _networks(srv), _volumes(srv)
    for path in ("/networks/create", "/volumes/create"):
        # The answer comes from the announced length, before the body is read.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(str(srv.sock))
            s.sendall(
                f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                f"Content-Length: {64 << 20}\r\n\r\n".encode()
                + b'{"Name": "huge", "Labels": {"k": "'
                + b"v" * 65536
            )
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:300]
        assert "too large" in json.loads(body)["message"]
    assert _networks(srv) == nets
    assert _volumes(srv) == vols


def test_connect_and_disconnect_a_created_container(srv: ApiServer) -> None:
    srv.docker("network", "create", "latenet", check=True)
    srv.pq.ok("create", "--name", "notyet", "busybox", "sleep", "600")
    srv.docker("network", "connect", "--alias", "late", "latenet", "notyet", check=True)
    nets = srv.json("GET", "/containers/notyet/json")["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "latenet"}
    assert "late" in nets["latenet"]["Aliases"]
    srv.docker("network", "disconnect", "latenet", "notyet", check=True)
    nets = srv.json("GET", "/containers/notyet/json")["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge"}
    again = srv.docker("network", "disconnect", "latenet", "notyet")
    assert again.returncode == 1
    assert "is not connected to network latenet" in again.stderr
    srv.pq.ok("rm", "notyet")
    srv.docker("network", "rm", "latenet", check=True)
