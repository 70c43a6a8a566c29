"""Terminal via a console socket, hooks, user namespaces, joining a netns, cgroup limits."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.errors import PortiqueError
from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, kv, new_id, run_container


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "console.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    yield path, srv
    srv.close()


def _receive_master(srv: socket.socket) -> int:
    srv.settimeout(10)
    conn, _ = srv.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    assert len(fds) == 1
    return fds[0]


def test_terminal_through_console_socket(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, console: tuple[Path, socket.socket]
) -> None:
    path, srv = console
    cfg = make_config(["sh", "-c", "tty; stty size; read line; echo got:$line"])
    cfg["process"]["terminal"] = True
    cfg["process"]["consoleSize"] = {"height": 33, "width": 101}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    rt.create(cid, bundle, console_socket=path)
    master = _receive_master(srv)
    try:
        rt.start(cid)
        out = _read_until(master, b"33 101")
        assert b"/dev/pts/0" in out
        assert b"33 101" in out
        os.write(master, b"hello\n")
        out = _read_until(master, b"got:hello")
        assert b"got:hello" in out
    finally:
        os.close(master)
    rt.delete(cid, force=True)


def test_terminal_needs_console_socket(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = make_config(["true"])
    cfg["process"]["terminal"] = True
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    with pytest.raises(PortiqueError, match="console socket"):
        rt.create(new_id(), bundle)


def test_exec_with_terminal(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, console: tuple[Path, socket.socket]
) -> None:
    path, srv = console
    out = Outputs(tmp_path)
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    proc = parse_process({"args": ["sh", "-c", "tty"], "terminal": True})
    pid = rt.exec(cid, proc, console_socket=path, detach=True)
    master = _receive_master(srv)
    try:
        assert b"/dev/pts/" in _read_until(master, b"/dev/pts/")
    finally:
        os.close(master)
    assert pid > 0
    rt.delete(cid, force=True)
    out.close()


HOOK = """#!/bin/sh
# Record which hook ran, in which mount namespace, with the state it read.
state=$(cat)
echo "$1 $(readlink /proc/self/ns/mnt) $state" >> {log}
"""


def test_hooks_each_kind_with_state(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK.format(log=log))
    hook.chmod(0o755)
    # createContainer/startContainer run in the container's mount namespace;
    # the hook file must then be reachable: bind it in at the same path.
    cfg = make_config(["sh", "-c", "echo running"])
    cfg["mounts"].append(
        {"destination": str(tmp_path), "source": str(tmp_path), "options": ["bind"]}
    )
    kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    cfg["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}] for k in kinds}
    cfg["annotations"] = {"org.test": "yes"}
    out = Outputs(tmp_path)
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    s = rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    deadline = time.monotonic() + 10
    while rt.state(cid).status is not Status.STOPPED and time.monotonic() < deadline:
        time.sleep(0.01)
    rt.delete(cid)
    out.close()
    lines = log.read_text().splitlines()
    ran = [line.split(" ", 2)[0] for line in lines]
    assert ran == kinds
    host_mnt = os.readlink("/proc/self/ns/mnt")
    by_kind = {line.split(" ", 2)[0]: line.split(" ", 2) for line in lines}
    for k in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by_kind[k][1] == host_mnt, k
    for k in ("createContainer", "startContainer"):
        assert by_kind[k][1] != host_mnt, k
    state = json.loads(by_kind["createRuntime"][2])
    assert state["id"] == cid
    assert state["pid"] == s.pid
    assert state["status"] == "created"
    assert state["bundle"] == str(bundle)
    assert state["annotations"] == {"org.test": "yes"}
    assert json.loads(by_kind["poststart"][2])["status"] == "running"
    assert json.loads(by_kind["poststop"][2])["status"] == "stopped"


def test_hook_timeout(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    # The hook says who it is, then would outlive its 1 s by far.
    pid_file, done = tmp_path / "hook.pid", tmp_path / "hook.done"
    script = f"echo $$ > {pid_file}; sleep 300; touch {done}"
    cfg = make_config(["true"])
    cfg["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 1}]}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    with pytest.raises(PortiqueError, match="prestart hook /bin/sh: timed out after 1s"):
        rt.create(new_id(), bundle)
    # Killed (with its sleep) and reaped by the time create gave up, not waited for.
    hook_pid = int(pid_file.read_text())
    assert not Path(f"/proc/{hook_pid}").exists()
    assert not done.exists()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp root is 0700)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rt-userns-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_user_namespace_mappings(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, public_dir: Path
) -> None:
    rootfs = public_dir / "rootfs"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(rootfs)], check=True)
    # The mapped root must be able to read its rootfs: chown it to the host range.
    subprocess.run(["chown", "-R", "100000:100000", str(rootfs)], check=True)
    cfg = make_config(
        [
            "sh",
            "-c",
            "echo uid=$(id -u); echo map=$(cat /proc/self/uid_map | tr -s ' '); echo gmap=$(cat /proc/self/gid_map | tr -s ' '); echo user=$(readlink /proc/self/ns/user); touch /ok; echo touch=$?",
        ]
    )
    cfg["root"]["path"] = str(rootfs)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    code, out = run_container(rt, tmp_path, rootfs, cfg)
    assert code == 0, out
    got = kv(out)
    assert got["uid"] == "0"
    assert got["map"].strip() == "0 100000 65536"
    assert got["gmap"].strip() == "0 100000 65536"
    assert got["user"] != os.readlink("/proc/self/ns/user")
    assert got["touch"] == "0"
    assert (rootfs / "ok").stat().st_uid == 100000


@pytest.fixture
def netns() -> Iterator[Path]:
    name = f"rtcore{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield Path("/run/netns") / name
    subprocess.run(["ip", "netns", "del", name], check=True)


def test_join_network_namespace_by_path(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, netns: Path
) -> None:
    # A mark the container can see: the namespace's loopback is up (a new one's is down).
    subprocess.run(["ip", "-n", netns.name, "link", "set", "lo", "up"], check=True)
    cfg = make_config(
        [
            "sh",
            "-c",
            "echo net=$(readlink /proc/self/ns/net); ip link show lo | grep -c LOWER_UP | sed 's/^/up=/'",
        ]
    )
    cfg["linux"]["namespaces"] = [
        {"type": "network", "path": str(netns)} if n["type"] == "network" else n
        for n in cfg["linux"]["namespaces"]
    ]
    _code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    got = kv(out)
    st = netns.stat()
    assert got["net"] == f"net:[{st.st_ino}]"
    assert got["up"] == "1"


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_memory_limit_oom_kill(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = make_config(["sh", "-c", "x=a; while true; do x=$x$x; done"])
    cfg["linux"]["resources"] = {"memory": {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}}
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 128 + 9, out


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_pids_limit_blocks_fork(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    # The limit counts the shell: three children fit under 5, ten do not. The
    # children outlive the loop (the init's exit ends them: a pid namespace).
    three = "for i in 1 2 3; do sleep 300 & done; echo forked"
    cfg = make_config(["sh", "-c", three])
    cfg["linux"]["resources"] = {"pids": {"limit": 5}}
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert (code, out) == (0, "forked\n")
    ten = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 300 & done; echo forked"
    cfg["process"]["args"] = ["sh", "-c", ten]
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code != 0
    assert "can't fork: Resource temporarily unavailable" in out
    assert "forked" not in out


def test_exec_into_user_namespace(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, public_dir: Path
) -> None:
    rootfs = public_dir / "rootfs"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(rootfs)], check=True)
    subprocess.run(["chown", "-R", "200000:200000", str(rootfs)], check=True)
    cfg = make_config(["sleep", "60"])
    cfg["root"]["path"] = str(rootfs)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle = make_bundle(tmp_path, rootfs, cfg)
    out = Outputs(tmp_path)
    cid = new_id()
    init = rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    proc = parse_process(
        {
            "args": ["sh", "-c", "echo uid=$(id -u); echo user=$(readlink /proc/self/ns/user)"],
            "user": {"uid": 5, "gid": 5},
        }
    )
    assert rt.exec(cid, proc, stdio=out.stdio) == 0
    got = kv(out.text())
    assert got["uid"] == "5"
    assert got["user"] == os.readlink(f"/proc/{init.pid}/ns/user")
    rt.delete(cid, force=True)
    out.close()
