"""docker-py's high-level API (PyPI `docker`) against `portique serve`, as a
Python program would use it: images (pull, build, push, save, load),
networks, volumes, events, and containers (run, create, logs, exec_run,
put_archive, get_archive, wait, remove)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from support import oci_build as ob
from support.api_server import ApiServer
from support.registry import Registry

pytestmark = [pytest.mark.compat, pytest.mark.registry]


def test_images_pull_build_push_save_load(
    srv: ApiServer, registry: Registry, tmp_path: Path
) -> None:
    import docker

    client = srv.client()
    ob.push_image(registry, "pyimg", "v1", ob.busybox_image())
    pulled = client.images.pull(f"{registry.host}/pyimg", tag="v1")
    assert f"{registry.host}/pyimg:v1" in pulled.tags
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        'FROM busybox\nARG WHO=nobody\nRUN echo "built by $WHO" > /who\nCMD ["cat", "/who"]\n'
    )
    image, logs = client.images.build(
        path=str(ctx), tag="pybuilt:1", buildargs={"WHO": "docker-py"}, rm=True
    )
    text = "".join(str(chunk.get("stream", "")) for chunk in logs)
    assert "Successfully tagged pybuilt:1" in text
    assert "pybuilt:1" in image.tags
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 4\n")
    with pytest.raises(docker.errors.BuildError) as failed:
        client.images.build(path=str(ctx), tag="pyfails:1")
    assert "returned a non-zero code: 4" in str(failed.value)
    target = f"{registry.host}/pybuilt"
    assert image.tag(target, tag="pushed")
    lines = list(client.images.push(target, tag="pushed", stream=True, decode=True))
    assert not [line for line in lines if "error" in line], lines
    aux = [line["aux"] for line in lines if "aux" in line]
    assert aux[0]["Tag"] == "pushed"
    assert aux[0]["Digest"].startswith("sha256:")
    # save (GET /images/{name}/get) then load (POST /images/load).
    archive = b"".join(image.save(named=True))
    client.images.remove("pybuilt:1")
    client.images.remove(f"{target}:pushed")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("pybuilt:1")
    loaded = client.images.load(archive)
    assert [img.id for img in loaded] == [image.id]
    assert "pybuilt:1" in client.images.get("pybuilt:1").tags
    # Pull back what was pushed: the same image.
    again = client.images.pull(target, tag="pushed")
    assert again.id == image.id
    listed = client.images.list(name="pybuilt")
    assert {img.id for img in listed} == {image.id}
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(f"{registry.host}/not-there", tag="1")


def test_networks_and_volumes(srv: ApiServer) -> None:
    import docker

    client = srv.client()
    net = client.networks.create("pynet", labels={"made-by": "docker-py"})
    assert client.networks.get("pynet").id == net.id
    assert [n.name for n in client.networks.list(filters={"label": "made-by=docker-py"})] == [
        "pynet"
    ]
    with pytest.raises(docker.errors.APIError) as dup:
        client.networks.create("pynet", check_duplicate=True)
    assert dup.value.status_code == 409
    vol = client.volumes.create("pyvol", labels={"k": "v"})
    assert vol.attrs["Mountpoint"].endswith("/volumes/pyvol/_data")
    assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["pyvol"]
    box = client.containers.run(
        "busybox", "sleep 600", detach=True, name="pynetuser", volumes={"pyvol": {"bind": "/v"}}
    )
    try:
        net.connect(box, aliases=["pyalias"])
        net.reload()
        assert box.id in net.attrs["Containers"]
        net.disconnect(box)
        net.reload()
        assert net.attrs["Containers"] == {}
        with pytest.raises(docker.errors.APIError) as busy:
            vol.remove()
        assert busy.value.status_code == 409
    finally:
        box.remove(force=True)
    vol.remove()
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("pyvol")
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("pynet")
    client.networks.create("pyprune")
    client.volumes.create("pyprunevol")
    assert "pyprune" in (client.networks.prune()["NetworksDeleted"] or [])
    assert "pyprunevol" in (client.volumes.prune(filters={"all": "true"})["VolumesDeleted"] or [])


def test_events(srv: ApiServer) -> None:
    client = srv.client()
    since = time.time()
    client.volumes.create("pyevents").remove()
    until = time.time()
    got = list(
        client.events(
            since=since, until=until, decode=True, filters={"type": "volume", "volume": "pyevents"}
        )
    )
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in got] == [
        ("volume", "create", "pyevents"),
        ("volume", "destroy", "pyevents"),
    ]
    # Following: a stream that gets the next event, then is closed by the client.
    stream = client.events(decode=True, filters={"type": "network"})
    try:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        n = 0
        while not seen and time.monotonic() < deadline:
            n += 1
            client.networks.create(f"pyev{n}").remove()
            seen.append(next(stream))
        assert seen[0]["Type"] == "network"
        assert seen[0]["Action"] == "create"
    finally:
        stream.close()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_containers(srv: ApiServer) -> None:
    import docker

    client = srv.client()
    assert client.containers.run("busybox", "echo hello from run", remove=True) == (
        b"hello from run\n"
    )
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", "sh -c 'echo oops >&2; exit 3'", remove=True)
    assert failed.value.exit_status == 3
    box = client.containers.create("busybox", "sleep 600", name="pybox", labels={"a": "b"})
    try:
        assert box.status == "created"
        box.start()
        box.reload()
        assert box.status == "running"
        assert box.put_archive("/tmp", _tar({"put.txt": b"put through the API\n"}))
        code, out = box.exec_run("cat /tmp/put.txt")
        assert (code, out) == (0, b"put through the API\n")
        code, out = box.exec_run(["sh", "-c", "echo to-err >&2; exit 5"])
        assert code == 5
        assert b"to-err" in out
        chunks, stat = box.get_archive("/tmp/put.txt")
        assert stat["name"] == "put.txt"
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
            member = tf.extractfile("put.txt")
            assert member is not None
            assert member.read() == b"put through the API\n"
        assert [c.name for c in client.containers.list(filters={"label": "a=b"})] == ["pybox"]
        box.stop(timeout=1)
        result = box.wait(timeout=60)
        assert result["StatusCode"] in (137, 143)
    finally:
        box.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pybox")
    logged = client.containers.run("busybox", "sh -c 'echo line1; echo line2 >&2'", detach=True)
    try:
        assert logged.wait(timeout=60)["StatusCode"] == 0
        assert logged.logs(stdout=True, stderr=False) == b"line1\n"
        assert logged.logs(stdout=False, stderr=True) == b"line2\n"
    finally:
        logged.remove()
