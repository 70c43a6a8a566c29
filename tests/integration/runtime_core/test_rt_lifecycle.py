"""create -> start -> kill -> delete, pause/resume, exec, ps, errors, cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
    PortiqueError,
)
from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, kv, new_id


def wait_status(rt: Runtime, cid: str, want: Status, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.state(cid).status is want:
            return
        time.sleep(0.01)
    raise AssertionError(f"{cid} never reached {want}: {rt.state(cid).status}")


def _children(pid: int, comm: bytes) -> list[int]:
    """The pids of `pid`'s children named `comm`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_bytes()
            except OSError:
                continue
            name, _, rest = stat.partition(b" (")[2].rpartition(b") ")
            if name == comm and int(rest.split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Outputs]:
    o = Outputs(tmp_path)
    yield o
    o.close()


def test_create_start_lifecycle(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    marker = tmp_path / "started"
    cfg = make_config(["sh", "-c", "echo started; sleep 60"])
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    pid_file = tmp_path / "pid"
    s = rt.create(cid, bundle, stdio=out.stdio, pid_file=pid_file)
    assert s.status is Status.CREATED
    assert int(pid_file.read_text()) == s.pid > 0
    # Blocked before the user program: still our Python, so nothing printed.
    assert Path(f"/proc/{s.pid}/cmdline").read_bytes().split(b"\0")[0] != b"sh"
    assert out.text() == ""
    assert rt.state(cid).status is Status.CREATED
    j = rt.state(cid).to_runc_json()
    assert j["status"] == "created"
    assert j["id"] == cid
    assert j["pid"] == s.pid
    assert j["bundle"] == str(bundle)
    rt.start(cid)
    assert rt.state(cid).status is Status.RUNNING
    deadline = time.monotonic() + 10
    while "started" not in out.text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "started" in out.text()
    with pytest.raises(InvalidState):
        rt.start(cid)
    with pytest.raises(InvalidState):
        rt.delete(cid)
    assert s.pid in rt.ps(cid)
    rt.kill(cid, signal.SIGKILL)
    wait_status(rt, cid, Status.STOPPED)
    assert rt.state(cid).to_runc_json()["pid"] == 0
    with pytest.raises(InvalidState):
        rt.kill(cid, signal.SIGTERM)
    rt.delete(cid)
    with pytest.raises(NotFound):
        rt.state(cid)
    assert not marker.exists()


def test_kill_any_signal_reaches_init(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    # PID 1 ignores signals it has no handler for: install one for USR1.
    script = "trap 'echo got-usr1; exit 3' USR1; echo ready; while true; do sleep 0.05; done"
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sh", "-c", script]))
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    deadline = time.monotonic() + 10
    while "ready" not in out.text() and time.monotonic() < deadline:
        time.sleep(0.01)
    rt.kill(cid, signal.SIGUSR1)
    wait_status(rt, cid, Status.STOPPED)
    assert "got-usr1" in out.text()
    rt.delete(cid)


def test_delete_force_running(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    s = rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    rt.delete(cid, force=True)
    with pytest.raises(NotFound):
        rt.state(cid)
    assert (
        not Path(f"/proc/{s.pid}").exists()
        or "Z" in Path(f"/proc/{s.pid}/stat").read_text().split(")")[1][:3]
    )


def test_delete_created_container(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["true"]))
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    # The spec: delete of a container that is not stopped MUST fail, a
    # created one included; --force still removes it.
    with pytest.raises(InvalidState, match="that is not stopped: created"):
        rt.delete(cid)
    assert rt.state(cid).status is Status.CREATED
    rt.delete(cid, force=True)
    assert rt.list() == []


def test_kill_all(rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs) -> None:
    cfg = make_config(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    # No pid namespace: the init's death would not take the others with it.
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    deadline = time.monotonic() + 10
    while len(rt.ps(cid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = rt.ps(cid)
    assert len(pids) == 3
    rt.kill(cid, signal.SIGKILL, all=True)
    deadline = time.monotonic() + 10
    while rt.ps(cid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rt.ps(cid) == []
    rt.delete(cid)


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_pause_resume(rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs) -> None:
    script = "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.01; done"
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sh", "-c", script]))
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    with pytest.raises(InvalidState):
        rt.pause(cid)
    rt.start(cid)
    rt.pause(cid)
    assert rt.state(cid).status is Status.PAUSED
    with pytest.raises(InvalidState):
        rt.pause(cid)
    state = Path(f"/proc/{rt.state(cid).pid}/status").read_text()
    assert rt.state(cid).status is Status.PAUSED, state
    rt.resume(cid)
    assert rt.state(cid).status is Status.RUNNING
    with pytest.raises(InvalidState):
        rt.resume(cid)
    rt.pause(cid)
    rt.delete(cid, force=True)  # a paused container can be force-deleted


@pytest.mark.vm  # also under a pure cgroup v2 kernel (scripts/test.sh)
def test_exec(rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    init = rt.create(cid, bundle, stdio=out.stdio)
    rt.start(cid)
    proc = parse_process(
        {
            "args": [
                "sh",
                "-c",
                "echo self=$$; echo mnt=$(readlink /proc/self/ns/mnt); echo id=$(id -u); echo host=$(hostname); echo cwd=$(pwd); echo x=$X",
            ],
            "cwd": "/etc",
            "env": ["X=1", "PATH=/bin"],
            "user": {"uid": 7, "gid": 7},
        }
    )
    code = rt.exec(cid, proc, stdio=out.stdio)
    assert code == 0
    got = kv(out.text())
    assert got["mnt"] == os.readlink(f"/proc/{init.pid}/ns/mnt")
    assert got["id"] == "7"
    assert got["host"] == "portique"
    assert got["cwd"] == "/etc"
    assert got["x"] == "1"
    assert got["self"] != "1"
    assert int(got["self"]) < 100
    # Exit status, detach, and the 127/126 classification.
    assert rt.exec(cid, parse_process({"args": ["sh", "-c", "exit 5"]}), stdio=out.stdio) == 5
    pid = rt.exec(cid, parse_process({"args": ["sleep", "30"]}), stdio=out.stdio, detach=True)
    assert pid > 0
    assert pid in rt.ps(cid)
    with pytest.raises(CommandNotFound, match='exec: "nope": executable file not found in \\$PATH'):
        rt.exec(cid, parse_process({"args": ["nope"]}), stdio=out.stdio)
    with pytest.raises(CommandNotExecutable):
        rt.exec(cid, parse_process({"args": ["/etc/passwd"]}), stdio=out.stdio)
    rt.delete(cid, force=True)


def test_missing_and_non_executable_command(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["does-not-exist"]))
    with pytest.raises(CommandNotFound) as e1:
        rt.run(new_id(), bundle, stdio=out.stdio)
    assert e1.value.exit_code == 127
    assert str(e1.value) == 'exec: "does-not-exist": executable file not found in $PATH'
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["/etc/passwd"]))
    with pytest.raises(CommandNotExecutable) as e2:
        rt.run(new_id(), bundle, stdio=out.stdio)
    assert e2.value.exit_code == 126
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["/etc"]))
    with pytest.raises(CommandNotExecutable):
        rt.create(new_id(), bundle, stdio=out.stdio)
    assert rt.list() == []


def test_duplicate_id_is_conflict(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["true"]))
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    with pytest.raises(Conflict, match="already exists"):
        rt.create(cid, bundle, stdio=out.stdio)
    assert rt.state(cid).status is Status.CREATED  # the first is untouched
    rt.delete(cid, force=True)


def test_bad_input_leaves_nothing(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    cfg = make_config(["true"])
    cfg["linux"]["namespaces"].append({"type": "foo"})
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    with pytest.raises(
        InvalidArgument, match=r'linux.namespaces\[6\].type: unknown namespace type "foo"'
    ):
        rt.create(new_id(), bundle)
    cfg = make_config(["true"])
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    (bundle / "config.json").write_text(__import__("json").dumps(cfg))
    with pytest.raises(InvalidArgument, match="user namespace"):
        rt.create(new_id(), bundle)
    (bundle / "config.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"config\.json"):
        rt.create(new_id(), bundle)
    cfg = make_config(["true"])
    cfg["root"]["path"] = str(tmp_path / "missing")
    (bundle / "config.json").write_text(__import__("json").dumps(cfg))
    with pytest.raises(InvalidArgument, match="rootfs"):
        rt.create(new_id(), bundle)
    assert rt.list() == []


def test_failed_create_cleans_up(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    # Fails inside the init, after the cgroup, namespaces and some mounts exist.
    cfg = make_config(["true"])
    cfg["mounts"].append(
        {"destination": "/data", "source": str(tmp_path / "no-such-dir"), "options": ["bind"]}
    )
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    with pytest.raises(PortiqueError, match="no-such-dir"):
        rt.create(cid, bundle, stdio=out.stdio)
    assert not (rt.state_root / cid).exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/portique/{cid}"))
    # A failing createRuntime hook: everything goes as well.
    cfg = make_config(["true"])
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    with pytest.raises(PortiqueError, match="createRuntime hook /bin/false"):
        rt.create(cid, bundle, stdio=out.stdio)
    assert not (rt.state_root / cid).exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/portique/{cid}"))


def test_run_detached_and_list(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    assert rt.run(cid, bundle, detach=True, stdio=out.stdio) == 0
    assert [s.id for s in rt.list()] == [cid]
    assert rt.list()[0].status is Status.RUNNING
    stats = rt.stats(cid)
    assert isinstance(stats, dict)
    assert stats
    rt.delete(cid, force=True)


def test_kill_created_container_with_sigterm(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["true"]))
    cid = new_id()
    rt.create(cid, bundle, stdio=out.stdio)
    rt.kill(cid, signal.SIGTERM)
    wait_status(rt, cid, Status.STOPPED)
    rt.delete(cid)


def test_no_pivot(rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs) -> None:
    cfg = make_config(
        ["sh", "-c", "echo root=$(ls / | tr '\\n' ' '); cat /proc/self/mountinfo | head -1"]
    )
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    assert rt.run(new_id(), bundle, stdio=out.stdio, no_pivot=True) == 0
    got = kv(out.text())
    assert "bin" in got["root"].split()
    assert "etc" in got["root"].split()


def test_rootfs_propagation_shared(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    cfg = make_config(["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"])
    cfg["linux"]["rootfsPropagation"] = "rshared"
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    assert rt.run(new_id(), bundle, stdio=out.stdio) == 0
    assert "shared:" in out.text()
    # The default is private: no peer group on the root.
    del cfg["linux"]["rootfsPropagation"]
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    private = Outputs(tmp_path)
    assert rt.run(new_id(), bundle, stdio=private.stdio) == 0
    assert "shared:" not in private.text()
    assert private.text().strip()
    private.close()


def test_interrupted_create_can_be_deleted(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    """A runtime killed mid-create leaves a "creating" state and a cgroup;
    the container then reads as stopped and delete removes both."""
    import subprocess
    import sys

    cfg = make_config(["true"])
    # The prestart hook never returns: the runtime is killed while waiting on it.
    cfg["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "60"]}]}
    bundle = make_bundle(tmp_path, busybox_rootfs, cfg)
    cid = new_id()
    script = (
        "import sys; from pathlib import Path; from portique.runtime import Runtime;"
        "from portique.linux.selfexe import ensure_protected; ensure_protected();"
        f"Runtime(Path({str(rt.state_root)!r})).create({cid!r}, Path({str(bundle)!r}))"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    # Kill it once it waits on the hook (its child `sleep 60`).
    deadline = time.monotonic() + 60
    while not (hooks := _children(child.pid, b"sleep")):
        assert time.monotonic() < deadline, "the prestart hook never ran"
        time.sleep(0.01)
    assert list(Path("/sys/fs/cgroup").glob(f"*/portique/{cid}"))
    child.kill()
    child.wait()
    for hook in hooks:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hook, signal.SIGKILL)
    assert rt.state(cid).status is Status.STOPPED
    assert [s.id for s in rt.list()] == [cid]
    rt.delete(cid)
    assert not (rt.state_root / cid).exists()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/portique/{cid}"))


def test_concurrent_deletes_are_serialised(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    """Two processes deleting one container: one removes it, the other is told
    it does not exist; neither trips over the other's half-done cleanup."""
    import subprocess
    import sys

    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    script = (
        "import sys; from pathlib import Path; from portique.runtime import Runtime;"
        "from portique.errors import NotFound\n"
        f"try:\n    Runtime(Path({str(rt.state_root)!r})).delete({cid!r}, force=True)\n"
        "except NotFound:\n    sys.exit(3)\n"
    )
    init = rt.state(cid).pid
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes == [0, 3]
    assert not (rt.state_root / cid).exists()
    # The deleting processes killed the init but cannot reap it: if an earlier
    # test made this process a subreaper, it is our child.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(init, 0)


@pytest.mark.parametrize("before", [False, True])
def test_foreground_run_and_exec_leave_the_subreaper_flag_as_found(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs, before: bool
) -> None:
    """A library caller is a subreaper only while a foreground run or exec
    waits: left one, it would inherit (and never reap) every later orphan."""
    from portique.linux import prctl

    (tmp_path / "s").mkdir()
    was = prctl.is_child_subreaper()
    prctl.set_child_subreaper(before)
    try:
        assert (
            rt.run(
                new_id(),
                make_bundle(tmp_path, busybox_rootfs, make_config(["true"])),
                stdio=out.stdio,
            )
            == 0
        )
        assert prctl.is_child_subreaper() is before
        cid = new_id()
        rt.run(
            cid,
            make_bundle(tmp_path / "s", busybox_rootfs, make_config(["sleep", "60"])),
            detach=True,
            stdio=out.stdio,
        )
        assert rt.exec(cid, parse_process({"args": ["true"]}), stdio=out.stdio) == 0
        assert prctl.is_child_subreaper() is before
        rt.delete(cid, force=True)
    finally:
        prctl.set_child_subreaper(was)


def test_exec_reports_the_pid_before_waiting(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    seen: list[tuple[int, bool]] = []
    # The process reads its stdin to the end: it runs until on_pid lets it go.
    hold, release = os.pipe()

    def on_pid(pid: int) -> None:
        # Called while the process runs: its cgroup lists it.
        seen.append((pid, pid in rt.ps(cid)))
        os.close(release)

    try:
        process = parse_process({"args": ["sh", "-c", "cat >/dev/null"]})
        stdio = (hold, out.fd, out.fd)
        assert rt.exec(cid, process, stdio=stdio, on_pid=on_pid) == 0
        assert len(seen) == 1
        assert seen[0][0] > 0
        assert seen[0][1]
    finally:
        os.close(hold)
        if not seen:  # on_pid never ran, so never closed it
            os.close(release)
        rt.delete(cid, force=True)


def test_init_and_exec_processes_are_in_every_hierarchy_of_the_cgroup(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, out: Outputs
) -> None:
    """The children join the cgroup themselves (CgroupManager.join): the
    whole process lands in each hierarchy, before anything of the user runs."""
    from portique.runtime.cgroups import hierarchies, open_manager

    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    try:
        init = rt.state(cid).pid
        extra = rt.exec(cid, parse_process({"args": ["sleep", "60"]}), stdio=out.stdio, detach=True)
        mgr = open_manager(rt.state(cid).cgroups_path, cid)
        mounted = {",".join(ctrls) for _, ctrls in hierarchies()}
        for d in mgr.dirs().values():
            procs = {int(p) for p in (Path(d) / "cgroup.procs").read_text().split()}
            assert {init, extra} <= procs, d
        # From the host: each hierarchy's line of /proc/PID/cgroup names it.
        for pid in (init, extra):
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            assert lines
            # (v1 hybrid: the unified "0::" line is not a hierarchy we use, nor
            # is a v1 hierarchy that exists but is mounted nowhere)
            ours = [ln for ln in lines if mgr.version == "v2" or ln.split(":")[1] in mounted]
            assert ours
            assert all(line.endswith(mgr.path) for line in ours), lines
    finally:
        rt.delete(cid, force=True)
