"""What the OCI runtime spec says a runtime MUST do, checked on the real kernel:
hostname in a joined uts namespace, the state hooks see, delete of a
container that is not stopped, and the process's signal dispositions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.errors import InvalidArgument, InvalidState
from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, kv, new_id, run_container


@pytest.fixture
def uts_holder() -> Iterator[int]:
    """A process in a uts namespace of its own, as a pod's pause would hold one."""
    proc = subprocess.Popen(["unshare", "--uts", "sleep", "300"])
    try:
        mine = os.readlink("/proc/self/ns/uts")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{proc.pid}/ns/uts") == mine:
            assert time.monotonic() < deadline, "unshare --uts did not run"
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_hostname_in_a_uts_namespace_joined_by_path(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, uts_holder: int
) -> None:
    path = f"/proc/{uts_holder}/ns/uts"
    cfg = make_config(["sh", "-c", "echo host=$(hostname); echo uts=$(readlink /proc/self/ns/uts)"])
    cfg["hostname"] = "joined-name"
    cfg["domainname"] = "joined.example"
    cfg["linux"]["namespaces"] = [
        {"type": "uts", "path": path} if n["type"] == "uts" else n
        for n in cfg["linux"]["namespaces"]
    ]
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    got = kv(out)
    assert got["host"] == "joined-name"
    assert got["uts"] == os.readlink(path)
    # Set in the joined namespace (the holder sees it), not on the host.
    seen = subprocess.run(
        ["nsenter", f"--uts={path}", "hostname"], capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == "joined-name"
    assert socket.gethostname() != "joined-name"


def test_hostname_in_the_hosts_uts_namespace_is_refused(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    cfg = make_config(["true"])
    cfg["hostname"] = "not-the-host"
    cfg["linux"]["namespaces"] = [
        {"type": "uts", "path": "/proc/self/ns/uts"} if n["type"] == "uts" else n
        for n in cfg["linux"]["namespaces"]
    ]
    before = socket.gethostname()
    with pytest.raises(InvalidArgument, match="is the host's"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert socket.gethostname() == before
    assert rt.list() == []


HOOK = """#!/bin/sh
echo "$1 $(cat)" >> {log}
"""


def test_hooks_before_start_see_status_created(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # The spec's lifecycle: "creating" lasts while the environment is made
    # (step 2); prestart, createRuntime and createContainer (steps 3-5)
    # and startContainer see "created", with the container's pid.
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK.format(log=log))
    hook.chmod(0o755)
    cfg = make_config(["true"])
    cfg["mounts"].append(
        {"destination": str(tmp_path), "source": str(tmp_path), "options": ["bind"]}
    )
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer"]
    cfg["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}] for k in kinds}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    out = Outputs(tmp_path)
    cid = new_id()
    try:
        s = rt.create(cid, bundle, stdio=out.stdio)
        rt.start(cid)
        deadline = time.monotonic() + 20  # startContainer runs before the program
        while rt.state(cid).status is not Status.STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rt.delete(cid, force=True)
        out.close()
    states = {
        line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
        for line in log.read_text().splitlines()
    }
    assert list(states) == kinds
    for kind, state in states.items():
        assert state["status"] == "created", kind
        assert state["pid"] == s.pid, kind
        assert state["id"] == cid, kind


def test_delete_refuses_created_running_and_paused(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    out = Outputs(tmp_path)
    cid = new_id()
    try:
        rt.create(cid, bundle, stdio=out.stdio)
        for step in ("created", "running", "paused"):
            if step == "running":
                rt.start(cid)
            elif step == "paused":
                rt.pause(cid)
            with pytest.raises(InvalidState, match=f"that is not stopped: {step}"):
                rt.delete(cid)
            assert rt.state(cid).status is Status(step)
        rt.delete(cid, force=True)
        assert rt.list() == []
    finally:
        out.close()


def test_program_gets_default_signal_dispositions(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    # The interpreter ignores SIGPIPE and SIGXFSZ; ignored signals survive
    # execve, and the program must not inherit them (nor a blocked mask).
    code, out = run_container(
        rt, tmp_path, busybox_rootfs, make_config(["grep", "^Sig[IB]", "/proc/self/status"])
    )
    assert code == 0, out
    got = {k.rstrip(":"): v for k, v in (line.split() for line in out.splitlines())}
    assert got == {"SigBlk": "0000000000000000", "SigIgn": "0000000000000000"}


def test_time_namespace_offsets(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    year = 365 * 24 * 3600
    cfg = make_config(
        ["sh", "-c", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime"],
        linux={
            **make_config()["linux"],
            "timeOffsets": {"monotonic": {"secs": year}, "boottime": {"secs": 7 * year}},
        },
    )
    cfg["linux"]["namespaces"].append({"type": "time"})
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg)
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split() for line in lines[:2]] == [
        ["monotonic", str(year), "0"],
        ["boottime", str(7 * year), "0"],
    ]
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    assert int(lines[2]) >= 7 * year + int(host_uptime)


def test_time_offsets_need_a_new_time_namespace(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    cfg = make_config(["true"])
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 5}}
    with pytest.raises(InvalidArgument, match=r"linux\.timeOffsets: needs a new time namespace"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"realtime": {"secs": 5}}
    with pytest.raises(InvalidArgument, match="monotonic and boottime only"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)


@pytest.mark.parametrize(("domain", "machine"), [("LINUX32", "i686"), ("LINUX", "x86_64")])
def test_personality(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, domain: str, machine: str
) -> None:
    assert os.uname().machine == "x86_64"
    cfg = make_config(["sleep", "60"])
    cfg["linux"]["personality"] = {"domain": domain}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    out = Outputs(tmp_path)
    cid = new_id()
    try:
        rt.create(cid, bundle, stdio=out.stdio)
        rt.start(cid)
        # The init's own and an exec'd process's (`uname -m` reads it).
        with open(f"/proc/{rt.state(cid).pid}/personality") as f:
            assert int(f.read(), 16) == {"LINUX": 0, "LINUX32": 8}[domain]
        proc = parse_process({**cfg["process"], "args": ["uname", "-m"]})
        assert rt.exec(cid, proc, stdio=out.stdio) == 0
        assert out.text() == f"{machine}\n"
    finally:
        rt.delete(cid, force=True)
        out.close()


def test_personality_flags_are_refused(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    cfg = make_config(["true"])
    cfg["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}
    with pytest.raises(InvalidArgument, match=r"linux\.personality\.flags: 'ADDR_NO_RANDOMIZE'"):
        run_container(rt, tmp_path, busybox_rootfs, cfg)
