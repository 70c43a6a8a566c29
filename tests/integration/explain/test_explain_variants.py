"""`portique explain` on containers weakened by one flag each: the facts the
flag changes, checked against the kernel, and the flag named in the verdict."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from support.kernel_facts import (
    cap_names,
    cgroup_dir,
    cgroup_v2,
    mountinfo,
    nft_ruleset,
    ns_inode,
    status,
    weakening,
)


def _calls(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["privileges"]["syscalls"]}


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_privileged(engine: Any, explained: Any) -> None:
    c = explained("--network", "none", "--privileged")
    r = c.report
    st = status(c.pid)
    assert st["Seccomp"] == "0"
    assert r["privileges"]["seccomp_mode"] == "disabled"
    host = cap_names(status("self")["CapBnd"])
    assert set(r["privileges"]["capabilities"]["effective"]) == cap_names(st["CapEff"]) == host
    sys_mount = [m for m in mountinfo(c.pid) if m["target"] == "/sys"][-1]
    assert sys_mount["options"].startswith("rw")
    assert r["filesystem"]["sys_writable"] is True
    assert r["filesystem"]["masked"] == []
    assert "/proc/keys" in r["filesystem"]["unmasked"]
    # The device cgroup lets it open a loop device: so does the kernel.
    loop = {d["device"]: d for d in r["privileges"]["devices"]}["b 7:0"]
    assert loop["verdict"] == "allowed"
    p = engine("exec", c.id, "sh", "-c", "mknod /tmp/l b 7 0 && head -c1 /tmp/l")
    assert "Operation not permitted" not in p.stderr
    w = weakening(r, "privileged")
    assert w["flag"] == "--privileged"
    assert not w["docker_default"]


def test_network_host(engine: Any, explained: Any) -> None:
    c = explained("--network", "host")
    net = c.report["network"]
    assert ns_inode(c.pid, "net") == ns_inode("self", "net")
    assert net["netns_shared"] is True
    assert {i["name"] for i in net["interfaces"]} == set(os.listdir("/sys/class/net"))
    assert net["published"] == []
    assert weakening(c.report, "host-net")["flag"] == "--network host"
    assert not [w for w in c.report["verdict"] if w["id"] == "host-pid"]


def test_cap_add_sys_admin(engine: Any, explained: Any) -> None:
    c = explained("--network", "none", "--cap-add", "SYS_ADMIN")
    pr = c.report["privileges"]
    st = status(c.pid)
    assert "CAP_SYS_ADMIN" in cap_names(st["CapEff"])
    assert "CAP_SYS_ADMIN" in pr["capabilities"]["effective"]
    assert "CAP_SYS_ADMIN" in pr["capabilities"]["bounding"]
    # portique's profile lets mount through once CAP_SYS_ADMIN is granted; the
    # probe found it, and the container can indeed mount.
    assert _calls(c.report)["mount"]["verdict"] == "allowed"
    engine.ok("exec", c.id, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m")
    w = weakening(c.report, "capability:CAP_SYS_ADMIN")
    assert w["flag"] == "--cap-add SYS_ADMIN"
    assert "mount" in w["detail"]


def test_seccomp_unconfined(engine: Any, explained: Any) -> None:
    c = explained("--network", "none", "--security-opt", "seccomp=unconfined")
    pr = c.report["privileges"]
    st = status(c.pid)
    assert st["Seccomp"] == "0"
    assert st["Seccomp_filters"] == "0"
    assert (pr["seccomp_mode"], pr["seccomp_filters"]) == ("disabled", 0)
    assert pr["syscall_probe"]["ran"] is True
    assert pr["syscall_probe"]["filter_source"] == ""
    assert {s["verdict"] for s in pr["syscalls"]} <= {"allowed", "unknown"}
    assert _calls(c.report)["unshare"]["verdict"] == "allowed"
    # No filter: unshare(CLONE_NEWUSER), which needs no capability, works.
    engine.ok("exec", c.id, "unshare", "-U", "true")
    w = weakening(c.report, "seccomp")
    assert w["flag"] == "--security-opt seccomp=unconfined"
    assert not [w for w in c.report["verdict"] if w["id"] == "privileged"]


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_memory_and_pids_limits(engine: Any, explained: Any) -> None:
    c = explained("--network", "none", "-m", "64m", "--pids-limit", "20")
    res = c.report["resources"]
    values = {v["name"]: v for v in res["limits"] + res["usage"]}
    mem = cgroup_dir(c.pid, "memory")
    pids = cgroup_dir(c.pid, "pids")
    if cgroup_v2():
        assert int((mem / "memory.max").read_text()) == 64 << 20
        assert Path(values["memory.max"]["source"]) == mem / "memory.max"
        swap = (mem / "memory.swap.max").read_text().strip()
        assert values["memory.swap.max"]["raw"] == swap
    else:
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
        memsw = int((mem / "memory.memsw.limit_in_bytes").read_text())
        assert values["memory+swap.max"]["value"] == memsw
    assert values["memory.max"]["value"] == 64 << 20
    assert int((pids / "pids.max").read_text()) == 20 == values["pids.max"]["value"]
    assert values["memory.oom_kills"]["value"] == 0
    # The limits hold: a process that outgrows 64 MiB is killed (explain then
    # counts the kill the kernel recorded), and the 20th task cannot fork.
    engine("exec", c.id, "sh", "-c", "x=$(head -c 200m /dev/zero | tr '\\0' a)")
    r = json.loads(engine.ok("explain", "--format", "json", c.id))
    kills = {v["name"]: v for v in r["resources"]["usage"]}["memory.oom_kills"]["value"]
    events = (
        (mem / "memory.events").read_text()
        if cgroup_v2()
        else (mem / "memory.oom_control").read_text()
    )
    kernel = int(events.split("oom_kill ")[1].split()[0])
    assert kills == kernel >= 1
    p = engine("exec", c.id, "sh", "-c", "for i in $(seq 30); do sleep 600 >/dev/null 2>&1 & done")
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr


def test_host_root_bind_mount(engine: Any, explained: Any) -> None:
    c = explained("--network", "none", "-v", "/:/host")
    st, host = os.stat(f"/proc/{c.pid}/root/host"), os.stat("/")
    assert (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino)
    mounts = {m["target"]: m for m in c.report["filesystem"]["mounts"]}
    assert mounts["/host"]["host_path"] == "/"
    assert mounts["/host"]["kind"] == "bind"
    assert "/host" in {v["target"] for v in c.report["filesystem"]["volumes"]}
    w = weakening(c.report, "host-root")
    assert w["flag"] == "-v /:/host"


def test_engine_socket_bind_mount(engine: Any, explained: Any, tmp_path: Path) -> None:
    sock_path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    try:
        c = explained("--network", "none", "-v", f"{sock_path}:/var/run/docker.sock")
        st = os.stat(f"/proc/{c.pid}/root/var/run/docker.sock")
        assert stat.S_ISSOCK(st.st_mode)
        w = weakening(c.report, "engine-socket")
        assert w["flag"] == f"-v {sock_path}:/var/run/docker.sock"
    finally:
        server.close()


def test_published_port(engine: Any, explained: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = explained("-p", f"127.0.0.1:{port}:80")
    published = c.report["network"]["published"]
    assert len(published) == 1
    p = published[0]
    assert (p["protocol"], p["host_ip"], p["host_port"], p["container_port"]) == (
        "tcp",
        "127.0.0.1",
        str(port),
        "80",
    )
    inside = engine.ok("exec", c.id, "ip", "-o", "-4", "addr", "show", "eth0").split()
    assert p["container_ip"] == inside[inside.index("inet") + 1].split("/")[0]
    assert p["rule"] in nft_ruleset()
    assert [w["id"] for w in c.report["verdict"]] == ["root"]
