"""Container management verbs, volumes, restart policies and concurrency."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from support.engine_cli import Portique


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def _wait_for(pred: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _monitor_pids(cid: str) -> list[str]:
    """The container's monitor: the one process that restarts it (its command line
    names the container; one forked from a warm server is named by its comm)."""
    out = subprocess.run(["pgrep", "-f", f"id={cid}"], capture_output=True, text=True).stdout
    forked = subprocess.run(["pgrep", "-x", f"pqm-{cid[:11]}"], capture_output=True, text=True)
    return sorted(set(out.split()) | set(forked.stdout.split()))


def test_ps_inspect_rename_pause_kill(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "--name", "life", "-l", "tier=web", "busybox", "sleep", "300").strip()
    table = pq.ok("ps").splitlines()
    assert table[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    row = next(line for line in table if line.startswith(cid[:12]))
    assert "busybox" in row
    assert '"sleep 300"' in row
    assert "Up " in row
    assert row.endswith("life")
    assert pq.ok("ps", "-q", "--filter", "label=tier=web") == cid[:12] + "\n"
    assert (
        pq.ok("ps", "--format", "{{.Names}}:{{.State}}", "--filter", "name=life")
        == "life:running\n"
    )
    doc = json.loads(pq.ok("inspect", "life"))[0]
    assert doc["Id"] == cid
    assert doc["Name"] == "/life"
    assert doc["State"]["Running"] is True
    assert doc["Config"]["Labels"] == {"tier": "web"}
    assert doc["Path"] == "sleep"
    assert doc["Args"] == ["300"]
    assert doc["State"]["Pid"] > 0
    assert doc["HostConfig"]["NetworkMode"] == "bridge"
    pq.ok("rename", "life", "life2")
    assert pq.inspect(cid[:8], "{{.Name}}") == "/life2"
    pq.ok("pause", "life2")
    assert pq.inspect("life2", "{{.State.Status}} {{.State.Paused}}") == "paused true"
    assert "(Paused)" in pq.ok("ps", "--filter", "name=life2")
    assert pq("exec", "life2", "true").returncode != 0
    pq.ok("unpause", "life2")
    assert pq.inspect("life2", "{{.State.Status}}") == "running"
    top = pq.ok("top", "life2")
    assert "sleep 300" in top
    assert "PID" in top.splitlines()[0]
    stats = pq.ok("stats", "--no-stream", "life2").splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert "life2" in stats[1]
    p = pq("rm", "life2")
    assert p.returncode != 0
    assert "stop the container" in p.stderr
    pq.ok("kill", "-s", "KILL", "life2")
    assert pq.ok("wait", "life2").strip() == "137"
    assert pq.inspect("life2", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert "Exited (137)" in pq.ok("ps", "-a", "--filter", "name=life2")
    pq.ok("rm", "life2")
    assert pq("inspect", "life2").returncode != 0


def test_create_start_attach_restart(pq: Portique) -> None:
    cid = pq.ok("create", "--name", "cs", "busybox", "sh", "-c", "echo started; sleep 300").strip()
    assert pq.inspect("cs", "{{.State.Status}}") == "created"
    assert "Created" in pq.ok("ps", "-a", "--filter", "name=cs")
    pq.ok("start", "cs")
    assert pq.inspect("cs", "{{.State.Status}}") == "running"
    pid1 = pq.inspect("cs", "{{.State.Pid}}")
    pq.ok("restart", "-t", "0", "cs")
    assert pq.inspect("cs", "{{.State.Status}}") == "running"
    assert pq.inspect("cs", "{{.State.Pid}}") != pid1
    _wait_for(lambda: pq.ok("logs", "cs") == "started\nstarted\n")
    pq.ok("rm", "-f", cid)
    assert not (pq.root / "containers" / cid).exists()


def test_start_attach_gets_output_and_code(pq: Portique) -> None:
    pq.ok("create", "--name", "sa", "busybox", "sh", "-c", "echo hi; exit 4")
    p = pq("start", "-a", "sa")
    assert p.returncode == 4
    assert p.stdout == "hi\n"
    pq.ok("rm", "sa")


def test_bind_and_named_volumes_keep_data(pq: Portique, tmp_path: Path) -> None:
    host = tmp_path / "bind"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = pq.ok(
        "run", "--rm", "-v", f"{host}:/b", "busybox", "sh", "-c", "cat /b/in; echo from c > /b/out"
    )
    assert out == "from host\n"
    assert (host / "out").read_text() == "from c\n"
    p = pq("run", "--rm", "-v", f"{host}:/b:ro", "busybox", "touch", "/b/x")
    assert p.returncode != 0
    assert "Read-only" in p.stderr
    pq.ok("run", "--name", "vw", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    p = pq("volume", "rm", "keep")
    assert p.returncode != 0
    assert "in use" in p.stderr
    pq.ok("rm", "vw")
    assert pq.ok("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f") == "kept\n"
    assert "keep" in pq.ok("volume", "ls", "-q").split()
    doc = json.loads(pq.ok("volume", "inspect", "keep"))[0]
    assert doc["Name"] == "keep"
    assert doc["Driver"] == "local"
    assert Path(doc["Mountpoint"]).is_dir()
    pq.ok("volume", "rm", "keep")
    assert "keep" not in pq.ok("volume", "ls", "-q").split()
    out = pq.ok(
        "run", "--rm", "--mount", f"type=bind,src={host},dst=/m,readonly", "busybox", "cat", "/m/in"
    )
    assert out == "from host\n"
    p = pq("run", "--rm", "--mount", "type=bind,src=/no/such/dir,dst=/m", "busybox", "true")
    assert p.returncode == 125
    assert "does not exist" in p.stderr


def test_anonymous_volume_removed_with_rm_v(pq: Portique) -> None:
    cid = pq.ok("create", "-v", "/anon", "busybox", "true").strip()
    name = pq.inspect(cid, "{{range .Mounts}}{{.Name}}{{end}}")
    assert len(name) == 64
    assert name in pq.ok("volume", "ls", "-q").split()
    pq.ok("rm", "-v", cid)
    assert name not in pq.ok("volume", "ls", "-q").split()


def test_restart_on_failure_exactly_three(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "--restart", "on-failure:3", "busybox", "sh", "-c", "echo run; exit 1"
    ).strip()
    _wait_for(lambda: pq.inspect(cid, "{{.State.Status}}") == "exited")
    assert pq.inspect(cid, "{{.RestartCount}} {{.State.ExitCode}}") == "3 1"
    assert pq.ok("logs", cid) == "run\n" * 4
    # Once its monitor is gone nothing can run it a fourth time.
    _wait_for(lambda: not _monitor_pids(cid))
    assert pq.inspect(cid, "{{.RestartCount}}") == "3"
    pq.ok("rm", cid)


def test_restart_always_comes_back_until_stopped(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 0"
    ).strip()
    _wait_for(lambda: int(pq.inspect(cid, "{{.RestartCount}}")) >= 2)
    pq.ok("stop", "-t", "1", cid)
    assert pq.inspect(cid, "{{.State.Status}}") == "exited"
    count = pq.inspect(cid, "{{.RestartCount}}")
    _wait_for(lambda: not _monitor_pids(cid))
    assert pq.inspect(cid, "{{.State.Status}} {{.RestartCount}}") == f"exited {count}"
    pq.ok("rm", cid)


def test_cp_both_ways_and_export(pq: Portique, tmp_path: Path) -> None:
    cid = pq.ok(
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/s; echo a > /d/a; echo b > /d/s/b; ln -s /etc/shadow /d/evil; sleep 300",
    ).strip()
    _wait_for(lambda: pq("exec", cid, "test", "-L", "/d/evil").returncode == 0)
    pq.ok("cp", f"{cid}:/d", str(tmp_path / "out"))
    assert (tmp_path / "out/a").read_text() == "a\n"
    assert (tmp_path / "out/s/b").read_text() == "b\n"
    assert (tmp_path / "out/evil").is_symlink()
    src = tmp_path / "payload"
    src.write_text("payload\n")
    shadow = Path("/etc/shadow").read_bytes()
    pq.ok("cp", str(src), f"{cid}:/d/evil")
    assert Path("/etc/shadow").read_bytes() == shadow
    assert pq.ok("exec", cid, "cat", "/d/evil") == "payload\n"
    pq.ok("cp", str(src), f"{cid}:/tmp/")
    assert pq.ok("exec", cid, "cat", "/tmp/payload") == "payload\n"
    tar = tmp_path / "fs.tar"
    pq.ok("export", "-o", str(tar), cid)
    listing = subprocess.run(
        ["tar", "tf", str(tar)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "bin/busybox" in listing
    assert "d/a" in listing
    pq.ok("rm", "-f", cid)


def test_twenty_concurrent_run_and_rm(pq: Portique) -> None:
    def run(i: int) -> str:
        out: str = pq.ok("run", "-d", "--name", f"conc{i}", "busybox", "sleep", "300", timeout=120)
        return out.strip()

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(run, range(20)))
    assert len(set(ids)) == 20
    running = pq.ok("ps", "-q", "--no-trunc", "--filter", "name=conc").split()
    assert sorted(running) == sorted(ids)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda c: pq("rm", "-f", c, timeout=120), ids))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    assert pq.ok("ps", "-aq", "--filter", "name=conc") == ""
    assert [m for m in mounts_under(pq.root / "containers") if any(c in m for c in ids)] == []
    for ctrl in ("memory", "pids", "cpu"):
        base = Path("/sys/fs/cgroup") / ctrl / "portique"
        assert not any((base / c).exists() for c in ids), ctrl


def test_system_df_prune_and_info(pq: Portique) -> None:
    pq.ok("create", "--name", "stale", "busybox", "true")
    df = pq.ok("system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
    out = pq.ok("container", "prune", "-f")
    assert "Deleted Containers:" in out
    assert pq("inspect", "stale").returncode != 0
    info = pq.ok("info")
    assert "Storage Driver: overlay2" in info
    assert "Cgroup Version" in info
    assert pq.ok("info", "--format", "{{.LoggingDriver}}") == "json-file\n"


def test_rm_force_restarting_and_paused(pq: Portique) -> None:
    looping = pq.ok("run", "-d", "--restart", "always", "busybox", "sh", "-c", "exit 1").strip()
    _wait_for(lambda: int(pq.inspect(looping, "{{.RestartCount}}")) >= 2)
    paused = pq.ok("run", "-d", "busybox", "sleep", "300").strip()
    pq.ok("pause", paused)
    pq.ok("rm", "-f", looping, paused, timeout=60)
    assert pq.ok("ps", "-aq", "--no-trunc", "--filter", f"id={looping}") == ""
    assert pq.ok("ps", "-aq", "--no-trunc", "--filter", f"id={paused}") == ""


def test_monitor_killed_leaves_consistent_state(pq: Portique) -> None:
    import os
    import signal

    cid = pq.ok("run", "-d", "busybox", "sh", "-c", "echo before; sleep 300").strip()
    _wait_for(lambda: pq.ok("logs", cid) == "before\n")
    mon = _monitor_pids(cid)
    assert len(mon) == 1
    os.kill(int(mon[0]), signal.SIGKILL)
    _wait_for(lambda: pq.inspect(cid, "{{.State.Status}}") == "exited")
    assert pq.ok("logs", cid) == "before\n"
    assert [m for m in mounts_under(pq.root / "containers") if cid in m] == []
    assert not (Path("/sys/fs/cgroup/pids/portique") / cid).exists()
    pq.ok("rm", cid)


def test_foreground_run_proxies_sigint(pq: Portique) -> None:
    import signal

    proc = subprocess.Popen(
        [
            *pq.argv,
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got INT; exit 5' INT; echo ready; while true; do sleep 0.1; done",
        ],
        env=pq.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 5
    assert out == "got INT\n"


def test_prune_sweeps_orphaned_container_dirs(pq: Portique) -> None:
    import os

    orphan = pq.root / "containers" / ("e" * 64)
    (orphan / "upper").mkdir(parents=True)
    (orphan / "config.json").write_text("{}")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    young = pq.root / "containers" / ("f" * 64)
    young.mkdir()
    pq.ok("container", "prune", "-f")
    assert not orphan.exists()
    assert young.exists()  # may be a `create` in progress
    young.rmdir()


def test_failed_create_leaves_no_volume_or_directory(pq: Portique) -> None:
    pq.ok("create", "--name", "taken", "busybox", "true")
    before = sorted(p.name for p in (pq.root / "containers").iterdir())
    p = pq("create", "--name", "taken", "-v", "fresh-vol:/data", "-v", "/anon", "busybox", "true")
    assert p.returncode == 125
    assert "already in use" in p.stderr
    assert "fresh-vol" not in pq.ok("volume", "ls", "-q").split()
    assert sorted(p.name for p in (pq.root / "containers").iterdir()) == before
    p = pq("run", "--rm", "--mount", "type=volume,src=v2,dst=/d,bogus=1", "busybox", "true")
    assert p.returncode == 125
    assert "v2" not in pq.ok("volume", "ls", "-q").split()
    pq.ok("rm", "taken")


def test_concurrent_starts_start_once(pq: Portique) -> None:
    cid = pq.ok("create", "busybox", "sleep", "300").strip()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: pq("start", cid), range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert pq.inspect(cid, "{{.State.Status}}") == "running"
    assert len(_monitor_pids(cid)) == 1
    pq.ok("rm", "-f", cid)
