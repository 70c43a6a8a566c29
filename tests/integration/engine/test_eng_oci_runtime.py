"""Issue 13 item 5: `run --runtime runc` (by name or path) runs the container with
that OCI runtime: its state is runc's, and the engine's verbs drive it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

from support.engine_cli import Portique


def _runc_list(pq: Portique) -> list[dict[str, object]]:
    root = pq.run_root / "oci-runtime"
    out = subprocess.run(["runc", "--root", str(root), "list", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return list(json.loads(out) or [])


def test_runtime_runc_runs_and_the_verbs_drive_it(pq: Portique) -> None:
    runc = shutil.which("runc")
    assert runc, "runc is a test dependency (scripts/setup.sh installs it)"
    p = pq("run", "--rm", "--network", "none", "--runtime", "runc", "busybox", "sh", "-c",
           "echo out; exit 3")  # fmt: skip
    assert (p.returncode, p.stdout) == (3, "out\n")
    cid = pq.ok("run", "-d", "--network", "none", "--runtime", runc, "busybox", "sh", "-c",
                "echo up; exec sleep 300").strip()  # fmt: skip
    pid = int(pq.inspect(cid, "{{.State.Pid}}"))
    (entry,) = [e for e in _runc_list(pq) if e["id"] == cid]
    assert (entry["pid"], entry["status"]) == (pid, "running")
    assert pq.inspect(cid, "{{.HostConfig.Runtime}}") == runc
    deadline = time.monotonic() + 30
    while pq.ok("logs", cid) != "up\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pq.ok("pause", cid)
    (entry,) = [e for e in _runc_list(pq) if e["id"] == cid]
    assert entry["status"] == "paused"
    pq.ok("unpause", cid)
    p = pq("exec", cid, "true")
    assert p.returncode == 125
    assert "runs under runc" in p.stderr
    pq.ok("stop", "-t", "1", cid)
    assert pq.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert not [e for e in _runc_list(pq) if e["id"] == cid]
    pq.ok("start", cid)  # a restart goes through runc again
    assert [e for e in _runc_list(pq) if e["id"] == cid]
    pq.ok("rm", "-f", cid)
    assert not [e for e in _runc_list(pq) if e["id"] == cid]
    p = pq("run", "--rm", "--runtime", "no-such-runtime", "busybox", "true")
    assert p.returncode == 125
    assert "unknown or invalid runtime name" in p.stderr
