"""portique-runtime, the binary, through the lifecycle verbs on the real kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.rtcli_bundle import (
    RuntimeCLI,
    one_line_error,
    portique_cgroups,
    unique_id,
    wait_pids,
)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_spec_edit_create_start_kill_delete(
    rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path
) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    rt("spec", "--bundle", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(busybox_rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sleep", "60"]
    (bundle / "config.json").write_text(json.dumps(config))
    cid = unique_id()
    pid_file = tmp_path / "init.pid"

    rt("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    state = rt.state(cid)
    assert state["id"] == cid
    assert state["status"] == "created"
    assert state["bundle"] == str(bundle)
    assert state["pid"] > 0
    assert state["ociVersion"].startswith("1.")
    assert set(state) >= {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created"}
    assert int(pid_file.read_text()) == state["pid"]
    # Blocked before the user program: init is not `sleep` yet.
    assert Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")[0] != b"sleep"

    rt("start", cid)
    state = rt.state(cid)
    assert state["status"] == "running"
    assert Path(f"/proc/{state['pid']}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"60"]
    # Its own namespaces.
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.readlink(f"/proc/{state['pid']}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")

    rt("kill", cid, "KILL")
    state = rt.wait_status(cid, "stopped")
    assert state["status"] == "stopped"

    rt("delete", cid)
    gone = rt("state", cid, check=False)
    assert gone.returncode == 1
    assert cid in one_line_error(gone.stderr)
    assert not (rt.root / cid).exists()
    assert portique_cgroups(cid) == []


def test_run_foreground_exits_with_container_status(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    b = bundle("sh", "-c", "echo out-$((6*7)); echo err >&2; exit 7")
    cid = unique_id()
    proc = rt("run", "--bundle", str(b), cid, check=False)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "out-42\n"
    assert proc.stderr == "err\n"
    # A foreground run deletes the container afterwards, as runc does.
    assert rt("list", "-q").stdout.split() == []


def test_run_foreground_is_pid_1_and_killed_by_signal(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    proc = rt("run", "-b", str(bundle("sh", "-c", "echo $$")), unique_id())
    assert proc.stdout == "1\n"
    # PID 1 cannot be killed from inside its namespace: kill it from outside
    # while the foreground run waits for it.
    cid = unique_id()
    fg = subprocess.Popen(
        rt.argv("run", "-b", str(bundle("sleep", "60")), cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = rt("state", cid, check=False)
            if probe.returncode == 0 and json.loads(probe.stdout)["status"] == "running":
                break
            time.sleep(0.05)
        rt("kill", cid, "KILL")
        # A signal death is reported as 128+signal (runc's convention).
        assert fg.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
    assert rt("list", "-q").stdout == ""


def test_foreground_run_forwards_signals(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    b = bundle("sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done")
    fg = subprocess.Popen(
        rt.argv("run", "-b", str(b), cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert fg.stdout is not None
        assert fg.stdout.readline() == b"ready\n"
        fg.send_signal(signal.SIGTERM)  # to the runtime, not the container
        assert fg.wait(timeout=30) == 42
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
        if fg.stdout is not None:
            fg.stdout.close()
    assert rt("list", "-q").stdout == ""


def _wait_catches(pid: int, sig: int) -> None:
    """Wait until process `pid` has a handler for `sig` (SigCgt in its status)."""
    deadline = time.monotonic() + 60
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(
            next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16
        )
        if caught & (1 << (sig - 1)):
            return
        assert time.monotonic() < deadline, f"{pid} never caught signal {sig}"
        time.sleep(0.02)


def test_run_detached_then_signal_by_name_and_number(
    rt: RuntimeCLI, bundle: Callable[..., Path], tmp_path: Path
) -> None:
    # PID 1 ignores signals it has no handler for, so trap TERM explicitly.
    b = bundle("sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done")
    cid = unique_id()
    pid_file = tmp_path / "pid"
    proc = rt("run", "-d", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert proc.stdout == ""
    state = rt.state(cid)
    assert state["status"] == "running"
    assert int(pid_file.read_text()) == state["pid"]
    _wait_catches(state["pid"], signal.SIGTERM)  # the trap is set
    rt("kill", cid)  # SIGTERM by default
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    rt("delete", cid)

    cid2 = unique_id()
    rt("run", "-d", "-b", str(bundle("sleep", "60")), cid2)
    rt("kill", cid2, "9")
    assert rt.wait_status(cid2, "stopped")["status"] == "stopped"
    rt("delete", cid2)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_kill_all_reaches_every_process(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    # An init with children: --all signals each process of the cgroup.
    rt("run", "-d", "-b", str(bundle("sh", "-c", "sleep 60 & sleep 60 & wait; sleep 60")), cid)
    assert len(wait_pids(rt, cid, 3)) == 3
    rt("kill", "--all", cid, "KILL")
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    rt("delete", cid)


def test_delete_force_running_and_missing(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    pid = rt.state(cid)["pid"]
    refused = rt("delete", cid, check=False)
    assert refused.returncode == 1
    one_line_error(refused.stderr)
    rt("delete", "--force", cid)
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
    assert rt("list", "-q").stdout == ""
    assert portique_cgroups(cid) == []
    # runc: deleting with --force what is already gone succeeds.
    assert rt("delete", "--force", cid).returncode == 0
    assert rt("delete", cid, check=False).returncode == 1


def test_list_formats(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    assert (
        rt("list").stdout == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    )
    b = bundle()
    ids = sorted([unique_id("a"), unique_id("b")])
    rt("create", "-b", str(b), ids[0])
    rt("run", "-d", "-b", str(b), ids[1])
    assert rt("list", "-q").stdout.split() == ids
    table = rt("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[ids[0]][2] == "created"
    assert rows[ids[1]][2] == "running"
    assert rows[ids[1]][3] == str(b)
    assert rows[ids[1]][5] == "root"
    entries = json.loads(rt("list", "--format", "json").stdout)
    assert [e["id"] for e in entries] == ids
    assert {e["status"] for e in entries} == {"created", "running"}
    assert all(e["owner"] == "root" for e in entries)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_ps_pause_resume_events(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle("sh", "-c", "sleep 60 & wait")), cid)
    init = rt.state(cid)["pid"]
    pids = wait_pids(rt, cid, 2)
    assert init in pids
    assert len(pids) == 2
    table = rt("ps", cid).stdout.splitlines()
    assert "PID" in table[0].split()
    assert len(table) == 3
    assert any(line.split()[1] == str(init) for line in table[1:])

    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    stat = Path(f"/proc/{init}/stat").read_text()
    assert stat.rsplit(")", 1)[1].split()[0] in ("D", "S")  # frozen tasks sleep
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"

    out = rt("events", "--stats", cid).stdout
    lines = out.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "stats"
    assert event["id"] == cid
    assert isinstance(event["data"], dict)
    assert event["data"]


def test_events_stream_ends_when_container_stops(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle("sleep", "600")), cid)
    events = _events(rt, cid)
    try:
        assert events.stdout is not None
        first = events.stdout.readline()  # the stream runs
        rt("kill", cid, "KILL")
        rest, _ = events.communicate(timeout=120)  # and ends by itself
    finally:
        _stop(events)
    lines = [json.loads(line) for line in (first + rest).splitlines()]
    assert lines
    assert all(e["type"] == "stats" and e["id"] == cid for e in lines)
    assert events.returncode == 0


def _events(rt: RuntimeCLI, cid: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        rt.argv("events", "--interval", "200ms", cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _oom_kills(cid: str) -> int:
    """The kernel's count of OOM kills in the container's memory cgroup."""
    for d in portique_cgroups(cid):
        for name in ("memory.events", "memory.oom_control"):  # v2, v1
            if (d / name).exists():
                fields = dict(line.split() for line in (d / name).read_text().splitlines())
                return int(fields.get("oom_kill", 0))
    return 0


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_events_reports_oom_kills(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    def limit_memory(spec: dict[str, Any]) -> None:
        spec["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}

    cid = unique_id()
    rt("run", "-d", "-b", str(bundle("sleep", "600", edit=limit_memory)), cid)
    events = _events(rt, cid)
    kinds: list[str] = []
    try:
        assert events.stdout is not None

        def next_kind() -> str:
            assert events.stdout is not None
            line = events.stdout.readline()
            assert line, "the event stream ended"
            event = json.loads(line)
            assert event["id"] == cid
            kind: str = event["type"]
            return kind

        # The first line: the stream has read the OOM count it reports changes to.
        kinds.append(next_kind())
        assert _oom_kills(cid) == 0
        # Only then a process that wants 64 MiB in the 16 MiB cgroup; exec
        # returns when the kernel has killed it.
        hog = 'x="$(yes | head -c 67108864)"'
        rt("exec", cid, "sh", "-c", hog, check=False, timeout=300)
        deadline = time.monotonic() + 120
        while _oom_kills(cid) == 0:
            assert time.monotonic() < deadline, "the kernel counted no OOM kill"
            time.sleep(0.05)
        # The kill is counted: the stream reports it at its next tick (every 200 ms).
        while "oom" not in kinds and time.monotonic() < deadline:
            kinds.append(next_kind())
    finally:
        _stop(events)
    assert kinds[0] == "stats"
    assert "oom" in kinds


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_update_pids_limit(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    rt("run", "-d", "-b", str(bundle()), cid)
    rt("update", "--pids-limit", "17", cid)
    dirs = [p for p in portique_cgroups(cid) if (p / "pids.max").exists()]
    assert dirs
    assert dirs[0].joinpath("pids.max").read_text().strip() == "17"


def test_global_flags_refused_or_accepted(rt: RuntimeCLI) -> None:
    proc = subprocess.run(
        rt.argv("--systemd-cgroup", "list"), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "--systemd-cgroup is not supported" in one_line_error(proc.stderr)
    entry = json.loads(rt.log.read_text().splitlines()[-1])
    assert entry["level"] == "error"
    assert "systemd" in entry["msg"]
    assert rt("--criu", "/usr/sbin/criu", "--rootless", "false", "list", "-q").stdout == ""
    proc = rt("--version")
    assert proc.stdout.startswith("portique-runtime version ")
    assert "\nspec: 1." in proc.stdout


# Under cgroup v2 the rootless spec's /sys (the host's, bound) brings the
# host's cgroup2 mount, and a second cgroup2 mount right there is EBUSY: the
# container's own cgroup directory is bound instead (runtime/mountplan.py).
@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_rootless_spec_runs_in_a_user_namespace(
    rt: RuntimeCLI, tmp_path: Path, busybox_rootfs: Path
) -> None:
    bundle = tmp_path / "rootless"
    bundle.mkdir()
    rt("spec", "--rootless", "--bundle", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(busybox_rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = [
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u; ls /sys/class >/dev/null;"
        # Its own cgroup at /sys/fs/cgroup (v2), or at /sys/fs/cgroup/pids (v1).
        "cat /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null"
        " | grep -qx 1 && echo own-cgroup",
    ]
    (bundle / "config.json").write_text(json.dumps(config))
    proc = rt("run", "-b", str(bundle), unique_id())
    uid_map, uid, cgroup = proc.stdout.splitlines()
    assert uid_map.split() == ["0", str(os.geteuid()), "1"]
    assert uid == "0"
    assert cgroup == "own-cgroup"
