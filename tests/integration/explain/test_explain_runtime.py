"""`portique-runtime explain ID`: the same report for a container of the OCI
runtime; here one whose config.json shares the host's pid namespace, which
`portique run` cannot make yet (`--pid host`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.kernel_facts import ns_inode, weakening
from support.rtcli_bundle import RuntimeCLI, make_bundle, unique_id


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(tmp_path / "state", tmp_path / "runtime.log")
    yield cli
    for cid in cli("list", "-q", check=False).stdout.split():
        cli("delete", "--force", cid, check=False)


def _no_pid_namespace(spec: dict[str, Any]) -> None:
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "pid"]


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_host_pid_namespace(rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", busybox_rootfs, edit=_no_pid_namespace)
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    pid = rt.state(cid)["pid"]
    r = json.loads(rt("explain", "--format", "json", cid).stdout)
    assert (r["target"]["runtime"], r["target"]["id"], r["target"]["pid"]) == (
        "portique-runtime",
        cid,
        pid,
    )
    pidns = {n["type"]: n for n in r["namespaces"]["items"]}["pid"]
    assert ns_inode(pid, "pid") == ns_inode("self", "pid") == pidns["inode"]
    assert pidns["shared"] is True
    # Its own processes come from its cgroup; each has the host's number inside.
    procs = r["processes"]
    assert procs["pid_ns_shared"] is True
    assert [(p["host_pid"], p["container_pid"]) for p in procs["items"]] == [(pid, pid)]
    # It sees the host's processes: this test's own among them.
    listing = rt("exec", cid, "sh", "-c", "echo /proc/[0-9]*").stdout.split()
    assert f"/proc/{os.getpid()}" in listing
    assert procs["visible"] > 1
    w = weakening(r, "host-pid")
    assert w["flag"] == "--pid host"
    assert '"pid"' in w["config"]
    # runc's default config has no seccomp section: unconfined, and said so.
    assert weakening(r, "seccomp")["flag"] == "--security-opt seccomp=unconfined"


def test_text_and_errors(rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", busybox_rootfs)
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    text = rt("explain", cid).stdout
    assert text.startswith(f"portique-runtime explain: container {cid[:12]}")
    assert "\nVERDICT" in text
    p = rt("explain", "no-such-id", check=False)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1
    assert "no-such-id" in p.stderr
    created = unique_id("explain")
    rt("create", "--bundle", str(bundle), created)
    p = rt("explain", created, check=False)
    assert p.returncode == 1
    assert "created but not started" in p.stderr
    rt("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    p = rt("explain", cid, check=False)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1
    assert "not running" in p.stderr


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory the mapped root can reach (pytest's tmp dirs are 0700 root)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="explain-userns-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_user_namespace(rt: RuntimeCLI, tmp_path: Path, public_dir: Path) -> None:
    """Root inside a user namespace is another uid on the host: explain says so,
    and the probe, joining that user namespace, still runs."""
    import subprocess

    from support.kernel_facts import status
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(public_dir / "rootfs")
    subprocess.run(["chown", "-R", "100000:100000", str(rootfs)], check=True)

    def userns(spec: dict[str, Any]) -> None:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        # sysfs belongs to the network namespace's owner: leave it out.
        spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/sys")]

    bundle = make_bundle(tmp_path / "bundle", rootfs, edit=userns)
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    pid = rt.state(cid)["pid"]
    r = json.loads(rt("explain", "--format", "json", cid).stdout)
    user = {n["type"]: n for n in r["namespaces"]["items"]}["user"]
    assert user["shared"] is False
    assert user["inode"] == ns_inode(pid, "user") != ns_inode("self", "user")
    maps = [line.split() for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines()]
    assert [[m["inside"], m["outside"], m["count"]] for m in r["namespaces"]["uid_map"]] == [
        [int(v) for v in line] for line in maps
    ]
    pr = r["privileges"]
    assert pr["host_uid"]["effective"] == int(status(pid)["Uid"].split()[1]) == 100000
    assert pr["uid"]["effective"] == 0
    assert pr["syscall_probe"]["ran"] is True
    assert "root" not in {w["id"] for w in r["verdict"]}


def test_hostile_files_and_watchers(
    rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path, public_dir: Path
) -> None:
    """A container that lies in wait: its /etc/resolv.conf is a symlink to a host
    file (read naively through /proc/PID/root, the host's file would be read),
    and its init watches its /proc for any process explain's probes would bring
    into its pid namespace (one that holds more capabilities than it does)."""
    import shutil

    secret = public_dir / "secret"
    secret.write_text("nameserver 203.0.113.66\n")
    rootfs = public_dir / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "etc/resolv.conf").symlink_to(secret)
    watch = "while :; do echo /proc/[0-9]*; done > /tmp/seen"
    bundle = make_bundle(tmp_path / "bundle", rootfs, ("sh", "-c", watch))
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"]["readonly"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = unique_id("explain")
    rt("run", "-d", "--bundle", str(bundle), cid)
    pid = rt.state(cid)["pid"]
    seen = Path(f"/proc/{pid}/root/tmp/seen")
    r = json.loads(rt("explain", "--format", "json", cid).stdout)
    assert r["privileges"]["syscall_probe"]["ran"] is True
    assert r["privileges"]["device_probe"]["ran"] is True
    assert r["network"]["dns_servers"] == []
    words = seen.read_text().split()
    rt("kill", cid, "KILL")
    assert len(words) > 100  # it was watching the whole time
    pids = {int(w.removeprefix("/proc/")) for w in words if w[6:].isdigit()}
    assert pids == {1}
