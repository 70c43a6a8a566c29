"""Resource and security flags seen from inside the container, and the prune verbs."""

from __future__ import annotations

import json
from pathlib import Path

from support.engine_cli import Portique


def _cgroup_file(pq: Portique, flags: list[str], v1: str, v2: str) -> str:
    script = f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}"
    out: str = pq.ok("run", "--rm", *flags, "busybox", "sh", "-c", script)
    return out.strip()


def test_cpu_limits_reach_the_cgroup(pq: Portique) -> None:
    quota = _cgroup_file(pq, ["--cpus", "0.5"], "cpu/cpu.cfs_quota_us", "cpu.max")
    assert quota in ("50000", "50000 100000")
    shares = _cgroup_file(pq, ["--cpu-shares", "512"], "cpu/cpu.shares", "cpu.weight")
    assert shares in ("512", "20")  # v2 maps shares onto weight
    cpus = _cgroup_file(pq, ["--cpuset-cpus", "0"], "cpuset/cpuset.cpus", "cpuset.cpus")
    assert cpus == "0"
    mem = _cgroup_file(pq, ["-m", "32m"], "memory/memory.limit_in_bytes", "memory.max")
    assert mem == str(32 << 20)


def test_custom_seccomp_profile(pq: Portique, tmp_path: Path) -> None:
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
            }
        )
    )
    p = pq("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/tmp/x")
    assert p.returncode != 0
    assert pq("run", "--rm", "busybox", "mkdir", "/tmp/x").returncode == 0
    p = pq("run", "--rm", "--security-opt", f"seccomp={tmp_path}/missing.json", "busybox", "true")
    assert p.returncode == 125
    assert "seccomp profile" in p.stderr


def test_no_new_privileges_and_privileged(pq: Portique) -> None:
    out = pq.ok(
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    )
    assert out.split()[1] == "1"
    out = pq.ok(
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /m && mount -t tmpfs none /m && echo mounted",
    )
    assert out == "mounted\n"


def test_exec_detached_and_stop_timeout(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "--stop-timeout", "1", "busybox", "sleep", "300").strip()
    assert pq.ok("exec", "-d", cid, "sh", "-c", "echo bg > /tmp/marker") == ""
    deadline = 50
    for _ in range(deadline):
        if pq("exec", cid, "cat", "/tmp/marker").stdout == "bg\n":
            break
    assert pq.ok("exec", cid, "cat", "/tmp/marker") == "bg\n"
    assert pq.inspect(cid, "{{.Config.StopTimeout}}") == "1"
    pq.ok("stop", cid)  # sleep ignores SIGTERM as PID 1: killed after 1 s
    assert pq.inspect(cid, "{{.State.ExitCode}}") == "137"
    pq.ok("rm", cid)


def test_volume_and_system_prune(pq: Portique) -> None:
    pq.ok("volume", "create", "--label", "k=v", "named-keep")
    cid = pq.ok("create", "-v", "/anon", "busybox", "true").strip()
    anon = pq.inspect(cid, "{{range .Mounts}}{{.Name}}{{end}}")
    pq.ok("rm", cid)
    out = pq.ok("volume", "prune", "-f")
    assert anon in out
    assert "named-keep" in pq.ok("volume", "ls", "--filter", "label=k=v", "-q")
    pq.ok("create", "--name", "sysprune", "busybox", "true")
    out = pq.ok("system", "prune", "-f", "--volumes")
    assert "Deleted Containers:" in out
    assert pq("inspect", "sysprune").returncode != 0
    pq.ok("volume", "rm", "named-keep")
