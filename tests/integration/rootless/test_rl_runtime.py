"""`portique-runtime` run by an ordinary user with a rootless config.json, as
runc's rootless mode: `spec --rootless` (the user alone mapped to root), or
the user's subordinate range through newuidmap/newgidmap; no cgroup where the
user has none (a limit refused naming the field); state under
$XDG_RUNTIME_DIR/portique-runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.rootless_cli import TEST_USER, UserPortique, busybox_tar, subuid_start

RUNTIME = str(Path(sys.executable).parent / "portique-runtime")


def _bundle(upq: UserPortique, name: str) -> Path:
    bundle = upq.base / name
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(
        ["tar", "-C", str(bundle / "rootfs"), "-xf", str(busybox_tar(upq.base))], check=True
    )
    subprocess.run(["chown", "-R", f"{upq.uid}:{upq.gid}", str(bundle)], check=True)
    return bundle


def _rt(upq: UserPortique, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*upq.argv()[:-1], RUNTIME, *args]  # setpriv ... -- portique-runtime
    return subprocess.run(
        argv, env=upq.env, cwd=bundle, capture_output=True, text=True, timeout=120, check=False
    )


def _edit(bundle: Path, **linux: object) -> None:
    path = bundle / "config.json"
    spec = json.loads(path.read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; id -u"]
    spec["linux"].update(linux)
    path.write_text(json.dumps(spec))


def test_runtime_runs_a_rootless_spec_as_the_user(upq: UserPortique) -> None:
    bundle = _bundle(upq, "rtb1")
    assert _rt(upq, bundle, "spec", "--rootless").returncode == 0
    _edit(bundle)
    p = _rt(upq, bundle, "run", "rl-demo")
    assert p.returncode == 0, p.stderr
    lines = [line.split() for line in p.stdout.strip().splitlines()]
    assert lines == [["0", str(upq.uid), "1"], ["0"]]
    state = upq.base / "run" / "portique-runtime"
    assert state.is_dir()
    assert _rt(upq, bundle, "state", "rl-demo").returncode != 0  # run deleted it


def test_runtime_maps_the_subordinate_range_and_refuses_limits(upq: UserPortique) -> None:
    bundle = _bundle(upq, "rtb2")
    assert _rt(upq, bundle, "spec", "--rootless").returncode == 0
    start = subuid_start(TEST_USER)
    uids = [
        {"containerID": 0, "hostID": upq.uid, "size": 1},
        {"containerID": 1, "hostID": start, "size": 65536},
    ]
    gids = [{**m, "hostID": upq.gid if m["containerID"] == 0 else m["hostID"]} for m in uids]
    _edit(bundle, uidMappings=uids, gidMappings=gids)
    p = _rt(upq, bundle, "run", "rl-demo2")
    assert p.returncode == 0, p.stderr
    assert [line.split() for line in p.stdout.strip().splitlines()][:2] == [
        ["0", str(upq.uid), "1"],
        ["1", str(start), "65536"],
    ]
    _edit(bundle, uidMappings=uids, gidMappings=gids, resources={"pids": {"limit": 10}})
    p = _rt(upq, bundle, "run", "rl-demo3")
    assert p.returncode == 1
    assert "linux.resources.pids" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
