"""`portique explain` on a default container: each fact of the report checked
against the kernel, read here by the test (or from inside the container)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from support.kernel_facts import (
    cap_names,
    cgroup_dir,
    cgroup_v2,
    mountinfo,
    ns_inode,
    status,
)

DOCKER_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}  # fmt: skip


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {i[key]: i for i in items}


def test_kernel_and_namespaces(engine: Any, explained: Any) -> None:
    c = explained("--network", "none")
    r = c.report
    assert r["schema_version"] == 1
    assert (r["target"]["id"], r["target"]["pid"]) == (c.id, c.pid)
    k = r["kernel"]
    assert k["release"] == os.uname().release
    assert k["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    inside = engine.ok("exec", c.id, "cat", "/proc/sys/kernel/random/boot_id").strip()
    assert k["container_boot_id"] == inside == k["boot_id"]
    assert k["same_kernel"] is True

    items = r["namespaces"]["items"]
    assert sorted(n["type"] for n in items) == [
        "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts",
    ]  # fmt: skip
    for n in items:
        assert n["inode"] == ns_inode(c.pid, n["type"]), n
        assert n["shared"] == (n["inode"] == ns_inode("self", n["type"])), n
    own = {n["type"] for n in items if not n["shared"]}
    assert {"ipc", "mnt", "net", "pid", "uts"} <= own
    assert "user" not in own  # no user namespace, as with Docker's defaults
    uid_map = [
        {"inside": int(a), "outside": int(b), "count": int(n)}
        for a, b, n in (line.split() for line in Path(f"/proc/{c.pid}/uid_map").read_text().splitlines())
    ]  # fmt: skip
    assert r["namespaces"]["uid_map"] == uid_map


def test_processes_inside_and_on_the_host(engine: Any, explained: Any) -> None:
    c = explained("--network", "none")
    engine.ok("exec", "-d", c.id, "sleep", "500")
    procs = cgroup_dir(c.pid, "pids") / "cgroup.procs"
    deadline = time.monotonic() + 20
    while len(procs.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    import json

    r = json.loads(engine.ok("explain", "--format", "json", c.id))
    p = r["processes"]
    assert p["pid_ns_shared"] is False
    hosts = {x["host_pid"] for x in p["items"]}
    assert hosts == {int(x) for x in procs.read_text().split()}
    for x in p["items"]:
        nspid = [int(v) for v in status(x["host_pid"])["NSpid"].split()]
        assert x["nspid"] == nspid
        assert x["container_pid"] == nspid[-1]
    assert {x["container_pid"] for x in p["items"] if x["host_pid"] == c.pid} == {1}
    # What the container itself lists in its /proc, less the shell asking.
    own, listing = engine.ok("exec", c.id, "sh", "-c", "echo $$; echo /proc/[0-9]*").splitlines()
    seen = {int(e.rsplit("/", 1)[1]) for e in listing.split()} - {int(own)}
    assert seen == {x["container_pid"] for x in p["items"]}
    assert p["visible"] == len(seen)


def test_filesystem(engine: Any, explained: Any) -> None:
    c = explained("--network", "none")
    fs = c.report["filesystem"]
    mi = mountinfo(c.pid)
    root = [m for m in mi if m["target"] == "/"][-1]
    opts = dict(o.partition("=")[::2] for o in root["super"].split(","))
    assert fs["root"]["fstype"] == root["fstype"] == "overlay"
    assert fs["root"]["upper"] == opts["upperdir"]
    assert fs["root"]["lower"] == opts["lowerdir"].split(":")
    assert Path(opts["upperdir"]).is_dir()
    assert [m["target"] for m in fs["mounts"]] == [m["target"] for m in mi]
    for mine, kernel in zip(fs["mounts"], mi, strict=True):
        assert ",".join(mine["options"]) == kernel["options"]
    # Every one of Docker's masked paths this kernel has is masked, and is.
    masked = _by(fs["masked"], "path")
    for path in ("/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/acpi", "/sys/firmware"):
        host_path = Path(f"/proc/{c.pid}/root{path}")
        if not os.path.lexists(host_path):
            continue
        assert path in masked, path
        st = os.stat(host_path)
        if masked[path]["how"] == "null-device":
            assert stat.S_ISCHR(st.st_mode)
            assert st.st_rdev == os.makedev(1, 3)
        else:
            assert os.listdir(host_path) == []
    assert fs["unmasked"] == []
    # Read-only as reported, and as the kernel enforces it.
    assert "/proc/sys" in fs["read_only"]
    p = engine("exec", c.id, "sh", "-c", "echo x > /proc/sys/kernel/hostname")
    assert p.returncode != 0
    assert "Read-only file system" in p.stderr
    sys_mount = [m for m in mi if m["target"] == "/sys"][-1]
    assert fs["sys_writable"] is False
    assert sys_mount["options"].split(",")[0] == "ro"
    assert fs["volumes"] == []


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_resources_from_the_cgroup_files(explained: Any) -> None:
    c = explained("--network", "none")
    res = c.report["resources"]
    assert res["cgroup_version"] == ("v2" if cgroup_v2() else "v1")
    limits = _by(res["limits"] + res["usage"], "name")
    mem = cgroup_dir(c.pid, "memory")
    if cgroup_v2():
        assert Path(limits["memory.max"]["source"]) == mem / "memory.max"
        assert (mem / "memory.max").read_text().strip() == "max"
    else:
        assert Path(limits["memory.max"]["source"]) == mem / "memory.limit_in_bytes"
        assert int((mem / "memory.limit_in_bytes").read_text()) >= 1 << 62
    assert limits["memory.max"]["value"] is None
    assert limits["pids.max"]["value"] is None
    pids = cgroup_dir(c.pid, "pids")
    assert limits["pids.current"]["value"] == int((pids / "pids.current").read_text())
    assert Path(limits["pids.current"]["source"]) == pids / "pids.current"


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_privileges(engine: Any, explained: Any) -> None:
    c = explained("--network", "none")
    pr = c.report["privileges"]
    st = status(c.pid)
    for name, key in (("effective", "CapEff"), ("permitted", "CapPrm"),
                      ("inheritable", "CapInh"), ("bounding", "CapBnd"),
                      ("ambient", "CapAmb")):  # fmt: skip
        assert set(pr["capabilities"][name]) == cap_names(st[key]), name
    assert set(pr["capabilities"]["bounding"]) == DOCKER_CAPS
    assert pr["host_uid"]["effective"] == int(st["Uid"].split()[1]) == 0
    assert pr["uid"]["effective"] == 0
    assert pr["no_new_privs"] is (st["NoNewPrivs"] == "1")
    assert pr["seccomp_mode"] == "filter"
    assert st["Seccomp"] == "2"
    assert pr["seccomp_filters"] == int(st["Seccomp_filters"])
    # The probe ran under the kernel's copy of the filter and found what the
    # container itself meets: unshare(CLONE_NEWUSER) needs no capability, so
    # only the filter can refuse it.
    assert pr["syscall_probe"] == {"ran": True, "filter_source": "kernel", "error": ""}
    calls = _by(pr["syscalls"], "name")
    for name in ("mount", "unshare", "setns", "bpf", "keyctl", "open_by_handle_at"):
        assert calls[name]["verdict"] == "denied", calls[name]
        assert calls[name]["with_filter"] == "EPERM"
    p = engine("exec", c.id, "unshare", "-U", "true")
    assert p.returncode != 0
    assert "Operation not permitted" in p.stderr
    # Devices: what the probe found is what a process of the container meets.
    devices = _by(pr["devices"], "device")
    assert devices["c 1:3"]["verdict"] == "allowed"
    assert devices["b 7:0"]["verdict"] == "denied"
    p = engine("exec", c.id, "sh", "-c", "mknod /tmp/l b 7 0 && head -c1 /tmp/l")
    assert p.returncode != 0
    assert "Operation not permitted" in p.stderr
    engine.ok("exec", c.id, "sh", "-c", "mknod /tmp/n c 1 3 && head -c1 /tmp/n")
    if cgroup_v2():
        assert pr["device_rules"] is None
    else:
        rules = (cgroup_dir(c.pid, "devices") / "devices.list").read_text().splitlines()
        assert pr["device_rules"] == rules
    nodes = {n["path"] for n in pr["device_nodes"]}
    assert nodes == {f"/dev/{n}" for n in os.listdir(f"/proc/{c.pid}/root/dev")
                     if stat.S_ISCHR(os.lstat(f"/proc/{c.pid}/root/dev/{n}").st_mode)}  # fmt: skip


def test_network_and_verdict(engine: Any, explained: Any) -> None:
    c = explained()
    net = c.report["network"]
    assert net["netns_shared"] is False
    dev = Path(f"/proc/{c.pid}/net/dev").read_text().splitlines()[2:]
    assert {i["name"] for i in net["interfaces"]} == {line.split(":")[0].strip() for line in dev}
    addrs = set()
    for line in engine.ok("exec", c.id, "ip", "-o", "addr").splitlines():
        fields = line.split()
        addrs.add(fields[fields.index("inet" if "inet" in fields else "inet6") + 1])
    assert {a for i in net["interfaces"] for a in i["addresses"]} == addrs
    gateway = engine.ok("exec", c.id, "ip", "route").split("default via ")[1].split()[0]
    assert [r["gateway"] for r in net["routes"] if r["destination"] == "default"] == [gateway]
    resolv = engine.ok("exec", c.id, "cat", "/etc/resolv.conf").splitlines()
    assert net["dns_servers"] == [ln.split()[1] for ln in resolv if ln.startswith("nameserver")]
    assert net["published"] == []
    # Nothing weaker than Docker's defaults; only the note that Docker shares.
    assert [(w["id"], w["docker_default"]) for w in c.report["verdict"]] == [("root", True)]


def test_text_report_says_where_each_fact_comes_from(engine: Any, explained: Any) -> None:
    c = explained("--network", "none")
    text = engine.ok("explain", c.id)
    for heading in ("KERNEL", "NAMESPACES", "PROCESSES", "FILESYSTEM", "RESOURCES",
                    "PRIVILEGES", "NETWORK", "VERDICT"):  # fmt: skip
        assert f"\n{heading}" in text
    for source in (f"/proc/{c.pid}/ns/pid", f"/proc/{c.pid}/status", f"/proc/{c.pid}/mountinfo",
                   "/proc/sys/kernel/random/boot_id"):  # fmt: skip
        assert f"({source})" in text


def test_errors_are_one_line(engine: Any) -> None:
    p = engine("explain", "no-such-container")
    # A missing container named by the user: Docker's words and status, as every verb.
    assert (p.returncode, p.stderr) == (1, "Error: No such container: no-such-container\n")
    cid = engine.ok("run", "-d", "--network", "none", "busybox", "true").strip()
    engine.ok("wait", cid)
    p = engine("explain", cid)
    assert p.returncode == 125
    assert p.stderr.count("\n") == 1
    assert "not running" in p.stderr
    engine.ok("rm", cid)


def test_paused_container(engine: Any, explained: Any) -> None:
    """Frozen processes cannot be stopped for ptrace: the probes are skipped and
    the report says why; the facts that need no probe are still read."""
    import json

    c = explained("--network", "none")
    engine.ok("pause", c.id)
    try:
        r = json.loads(engine.ok("explain", "--format", "json", c.id))
    finally:
        engine.ok("unpause", c.id)
    assert r["target"]["status"] == "paused"
    assert r["resources"]["frozen"] is True
    probe = r["privileges"]["syscall_probe"]
    assert probe["ran"] is False
    assert "paused" in probe["error"]
    assert r["privileges"]["seccomp_mode"] == "filter"
