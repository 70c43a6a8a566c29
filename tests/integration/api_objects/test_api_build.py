"""`POST /build` through `portique serve` with the real docker CLI (classic
builder: DOCKER_BUILDKIT=0, as /_ping's Builder-Version 1 offers), and
hostile contexts and queries answered with a 4xx, nothing left behind."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from support.api_server import ApiServer

pytestmark = pytest.mark.compat

DOCKERFILE = """\
FROM busybox
ARG GREETING=hello
LABEL stage=test
COPY hello.txt /hello.txt
RUN echo "$GREETING from run" > /made && cat /hello.txt >> /made
CMD ["cat", "/made"]
"""


def _context(tmp: Path, dockerfile: str = DOCKERFILE) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "hello.txt").write_text("copied file\n")
    return ctx


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _leftover_contexts(srv: ApiServer) -> list[str]:
    tmp = srv.root / "tmp"
    return [p.name for p in tmp.iterdir() if p.name.startswith("context-")] if tmp.exists() else []


def _tags(srv: ApiServer) -> set[str]:
    return {t for img in srv.json("GET", "/images/json") for t in img["RepoTags"]}


def test_docker_build_runs_and_tags(srv: ApiServer, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    iid = tmp_path / "iid"
    out = srv.docker(
        "build", "-t", "built:v1", "--build-arg", "GREETING=hi", "--iidfile", str(iid), str(ctx)
    )
    assert out.returncode == 0, out.stderr
    assert "Step 1/6 : FROM busybox" in out.stdout
    assert "Successfully built" in out.stdout
    assert "Successfully tagged built:v1" in out.stdout
    image_id = iid.read_text().strip()
    assert image_id.startswith("sha256:")
    assert srv.json("GET", "/images/built:v1/json")["Id"] == image_id
    labels = srv.json("GET", "/images/built:v1/json")["Config"]["Labels"]
    assert labels == {"stage": "test"}
    run = srv.pq("run", "--rm", "built:v1")
    assert run.stdout == "hi from run\ncopied file\n", run.stderr
    quiet = srv.docker("build", "-q", "--build-arg", "GREETING=hi", str(ctx), check=True)
    assert quiet.stdout.strip() == image_id  # all cached: the same image
    assert _leftover_contexts(srv) == []


def test_build_stream_is_docker_json(srv: ApiServer) -> None:
    body = _tar(
        [
            _file("Dockerfile", b"FROM busybox\nRUN echo streamed-output\n"),
        ]
    )
    status, headers, data = srv.request(
        "POST", "/build?t=streamed:1&nocache=1", body, {"Content-Type": "application/x-tar"}
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    msgs = [json.loads(line) for line in data.splitlines()]
    text = "".join(str(m.get("stream", "")) for m in msgs)
    assert "streamed-output" in text
    aux = [m["aux"] for m in msgs if "aux" in m]
    assert aux
    assert aux[0]["ID"].startswith("sha256:")
    assert not [m for m in msgs if "error" in m]
    srv.docker("rmi", "streamed:1", check=True)


def test_failing_build_reports_and_tags_nothing(srv: ApiServer, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo before-failing && exit 3\n")
    before = _tags(srv)
    out = srv.docker("build", "-t", "failing:1", str(ctx))
    assert out.returncode == 1
    assert "before-failing" in out.stdout
    assert "returned a non-zero code: 3" in out.stderr
    assert _tags(srv) == before
    missing = srv.docker(
        "build",
        "-t",
        "nofrom:1",
        str(_context(tmp_path / "b", "FROM 127.0.0.1:9/nothing-here:7\n")),
    )
    assert missing.returncode == 1
    assert "Pulling 127.0.0.1:9/nothing-here:7" in missing.stdout
    assert "cannot reach registry" in missing.stderr
    assert _leftover_contexts(srv) == []


def test_symlinks_in_the_context_stay_inside(srv: ApiServer, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text(f"host secret {os.urandom(8).hex()}\n")
    ctx = _context(tmp_path, 'FROM busybox\nCOPY link /copied\nCMD ["cat", "/copied"]\n')
    (ctx / "link").symlink_to(secret)
    out = srv.docker("build", "-t", "linked:1", str(ctx))
    if out.returncode == 0:
        run = srv.pq("run", "--rm", "linked:1")
        assert secret.read_text() not in run.stdout
        srv.docker("rmi", "linked:1", check=True)
    else:
        assert "link" in out.stderr
    # A Dockerfile that is a link out of the context is not read from the host.
    body = _tar(
        [
            (_symlink("Dockerfile", str(secret))),
        ]
    )
    status, _h, data = srv.request("POST", "/build", body)
    text = data.decode()
    assert "host secret" not in text
    assert status >= 400 or '"error"' in text


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    ("query", "members"),
    [
        ("", [_file("../escape", b"x"), _file("Dockerfile", b"FROM busybox\n")]),
        ("", [_file("/abs/../../escape", b"x"), _file("Dockerfile", b"FROM busybox\n")]),
        ("?dockerfile=../../../etc/passwd", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?dockerfile=/etc/passwd", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?t=Bad..Name", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?buildargs=notjson", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?buildargs=%5B1%5D", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?labels=%7B%22a%22%3A1%7D", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?version=2", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?remote=https://example.invalid/ctx.git", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?networkmode=container:x", [_file("Dockerfile", b"FROM busybox\n")]),
        ("?memory=lots", [_file("Dockerfile", b"FROM busybox\n")]),
        ("", [_file("Dockerfile", b"FROM busybox\nBOGUS instruction\n")]),
        ("", [_file("not-a-dockerfile", b"hello")]),
    ],
)
def test_hostile_builds_are_refused(
    srv: ApiServer, query: str, members: list[tuple[tarfile.TarInfo, bytes | None]]
) -> None:
    before = srv.json("GET", "/images/json?all=1")
    status, _h, data = srv.request(
        "POST", f"/build{query}", _tar(members), {"Content-Type": "application/x-tar"}
    )
    if status == 200:
        # The stream had begun: the failure is its last message, as dockerd's.
        last = json.loads(data.splitlines()[-1])
        assert last["error"], data
    else:
        assert 400 <= status < 500 or status == 501, (status, data)
        assert json.loads(data)["message"]
    assert srv.json("GET", "/images/json?all=1") == before
    assert _leftover_contexts(srv) == []
    assert not (srv.root.parent / "escape").exists()


def test_base_image_pulled_with_the_clients_credentials(srv: ApiServer, tmp_path: Path) -> None:
    from support.registry import TEST_PASSWORD, TEST_USER, start_registry

    with start_registry(tmp_path / "reg", mode="basic") as reg:
        base = f"{reg.host}/base:v1"
        srv.docker("tag", "busybox", base, check=True)
        srv.docker(
            "login", "-u", TEST_USER, "--password-stdin", reg.host, input=TEST_PASSWORD, check=True
        )
        srv.docker("push", base, check=True)
        srv.docker("rmi", base, check=True)
        dockerfile = f"FROM {base}\nRUN echo on-private-base\n"
        # Without credentials (no X-Registry-Config) the pull is refused...
        body = _tar([_file("Dockerfile", dockerfile.encode())])
        status, _h, data = srv.request("POST", "/build?t=frompriv:1", body)
        assert status == 200
        last = json.loads(data.splitlines()[-1])
        assert "unauthorized" in last["error"].lower(), last
        assert base not in _tags(srv)
        # ...the docker CLI sends the ones it logged in with: the build pulls.
        ctx = _context(tmp_path / "c", dockerfile)
        out = srv.docker("build", "-t", "frompriv:1", str(ctx))
        assert out.returncode == 0, out.stderr
        assert "on-private-base" in out.stdout
        srv.docker("rmi", "frompriv:1", base, check=True)
        srv.docker("logout", reg.host, check=True)


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(p) for p in (task / "children").read_text().split()}
    return out


def _processes_with(arg: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arg.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_client_gone_during_a_silent_step_cancels_the_build(srv: ApiServer) -> None:
    import socket
    import time

    assert srv.proc is not None
    idle = _children(srv.proc.pid)
    marker = f"{600 + int.from_bytes(os.urandom(2), 'big') % 1000}"
    body = _tar(
        [_file("Dockerfile", f"FROM busybox\nRUN echo step-started && sleep {marker}\n".encode())]
    )
    before = srv.json("GET", "/images/json?all=1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(120)
        s.connect(str(srv.sock))
        s.sendall(
            b"POST /build?t=cancelled:1&nocache=1 HTTP/1.1\r\nHost: docker\r\n"
            b"Content-Type: application/x-tar\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        got = b""
        while b"step-started" not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        deadline = time.monotonic() + 60
        while not _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_with(marker)
    # The hang-up cancels the build: the step's process, the worker and the
    # step's image go; nothing was tagged.
    deadline = time.monotonic() + 120
    while (_processes_with(marker) or _children(srv.proc.pid) - idle) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not _processes_with(marker)
    assert not _children(srv.proc.pid) - idle
    assert "cancelled:1" not in _tags(srv)
    assert srv.json("GET", "/images/json?all=1") == before
    assert _leftover_contexts(srv) == []
    # And the next build works.
    ok = srv.docker("build", "-q", "-", input="FROM busybox\nRUN echo next\n")
    assert ok.returncode == 0, ok.stderr
    srv.docker("rmi", ok.stdout.strip(), check=True)


def test_server_stop_during_a_build_leaves_nothing_running(tmp_path: Path) -> None:
    import socket
    import time

    from support.api_server import start_api_server

    marker = f"{1700 + int.from_bytes(os.urandom(2), 'big') % 1000}"
    body = _tar([_file("Dockerfile", f"FROM busybox\nRUN sleep {marker}\n".encode())])
    srv = start_api_server(tmp_path / "stopping", name="bstop")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(120)
            s.connect(str(srv.sock))
            s.sendall(
                b"POST /build HTTP/1.1\r\nHost: docker\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            deadline = time.monotonic() + 60
            while not _processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _processes_with(marker)
            srv.stop()  # SIGTERM: the worker cancels its build and cleans up
    finally:
        srv.stop()
    assert not _processes_with(marker)
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if str(tmp_path) in line]
