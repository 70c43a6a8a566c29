"""`update` (issue 13, item 4): resources applied to the live container's
cgroup through the runtime's update, HostConfig updated, Docker's words for
what cannot be updated, and a new restart policy for the run under way."""

from __future__ import annotations

import time
from pathlib import Path

from support.engine_cli import Portique


def _cgroup_file(controller: str, cid: str, name: str) -> Path:
    """The container's cgroup file, on this v1 hybrid host or a pure v2 one."""
    v1 = Path("/sys/fs/cgroup") / controller / "portique" / cid / name
    if v1.exists():
        return v1
    v2_names = {"memory.limit_in_bytes": "memory.max", "pids.max": "pids.max"}
    return Path("/sys/fs/cgroup/portique") / cid / v2_names.get(name, name)


def test_update_resources_of_a_running_container(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "busybox", "sleep", "1000").strip()
    try:
        out = pq.ok("update", "-m", "100m", "--pids-limit", "50", "--cpu-shares", "512", cid)
        assert out == f"{cid}\n"
        assert _cgroup_file("memory", cid, "memory.limit_in_bytes").read_text().strip() == str(
            100 << 20
        )
        assert _cgroup_file("pids", cid, "pids.max").read_text().strip() == "50"
        got = pq.inspect(
            cid, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}"
        )
        assert got == f"{100 << 20} 50 512"
        # The container itself sees its new limit.
        seen = pq.ok("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max").strip()
        assert seen in ("50", "max")  # v1 shows the container's own; a v2 host may show max
        # Kept across a restart.
        pq.ok("restart", "-t", "0", cid)
        assert _cgroup_file("memory", cid, "memory.limit_in_bytes").read_text().strip() == str(
            100 << 20
        )
    finally:
        pq.ok("rm", "-f", cid)


def test_update_refusals_in_dockers_words(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "--cpus", "0.5", "busybox", "sleep", "1000").strip()
    try:
        cases = [
            (["--cpu-quota", "1000"], f"portique: Cannot update container {cid}: Conflicting options:"
             " CPU Quota cannot be updated as NanoCPUs has already been set\n"),
            (["-m", "3m"], "portique: Minimum memory limit allowed is 6MB\n"),
            (["--restart", "bogus"], 'portique: invalid argument "bogus" for "--restart" flag:'
             " invalid restart policy 'bogus'\n"),
            ([], "portique: you must provide one or more flags when using this command\n"),
        ]  # fmt: skip
        for flags, message in cases:
            r = pq("update", *flags, cid)
            assert (r.returncode, r.stderr) in ((1, message), (125, message)), (flags, r.stderr)
        pq.ok("update", "--memory-swap", "300m", "-m", "200m", cid)
        r = pq("update", "-m", "400m", cid)
        assert r.returncode == 1
        assert "Memory limit should be smaller than already set memoryswap limit" in r.stderr
        missing = pq("update", "--pids-limit", "10", cid, "nosuch")
        assert missing.stdout == f"{cid}\n"
        assert (missing.returncode, missing.stderr) == (1, "Error: No such container: nosuch\n")
    finally:
        pq.ok("rm", "-f", cid)
    auto = pq.ok("run", "-d", "--rm", "busybox", "sleep", "1000").strip()
    try:
        r = pq("update", "--restart", "always", auto)
        assert r.returncode == 1
        assert r.stderr == (
            f"portique: Cannot update container {auto}: Restart policy cannot be updated"
            " because AutoRemove is enabled for the container\n"
        )
    finally:
        pq.ok("rm", "-f", auto)


def test_update_restart_policy_holds_for_the_run_under_way(pq: Portique) -> None:
    cid = pq.ok(
        "run", "-d", "busybox", "sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 3"
    ).strip()
    try:
        pq.ok("update", "--restart", "on-failure:2", cid)
        assert pq.inspect(cid, "{{json .HostConfig.RestartPolicy}}") == (
            '{"Name":"on-failure","MaximumRetryCount":2}'
        )
        pq.ok("exec", cid, "touch", "/go")
        deadline = time.monotonic() + 60
        while (
            pq.inspect(cid, "{{.RestartCount}}") != "2"
            or pq.inspect(cid, "{{.State.Status}}") != "exited"
        ):
            assert time.monotonic() < deadline, pq.inspect(
                cid, "{{.RestartCount}} {{.State.Status}}"
            )
            time.sleep(0.05)
    finally:
        pq.ok("rm", "-f", cid)
