"""The cgroup driver this host mounts (v1 here; v2 in the VM), on the real kernel.

Marked `vm`: scripts/test.sh runs these a second time inside a pure cgroup v2
VM. Every cgroup is made under /portique/<test id> and removed, and the
/portique parent goes too if this session created it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.oci.resources import parse_resources
from portique.runtime.cgroups import CgroupManager, detect, open_manager

pytestmark = pytest.mark.vm

ROOT = Path("/sys/fs/cgroup")
PY = sys.executable


def _parent_dirs() -> list[Path]:
    if detect(ROOT) == "v2":
        return [ROOT / "portique"]
    from portique.runtime.cgroups import hierarchies

    return [mp / "portique" for mp, _ in hierarchies(ROOT)]


@pytest.fixture(scope="module")
def _portique_parent() -> Iterator[None]:
    """Remove the shared /portique parent afterwards if this module made it."""
    existed = {d: d.is_dir() for d in _parent_dirs()}
    yield
    for d, was in existed.items():
        if not was:
            try:
                os.rmdir(d)
            except OSError:
                pass  # in use by another test run: leave it


@pytest.fixture
def cgroup(_portique_parent: None) -> Iterator[CgroupManager]:
    mgr = open_manager(None, f"test-{uuid.uuid4().hex[:12]}")
    mgr.create()
    try:
        yield mgr
    finally:
        if mgr.exists():
            mgr.kill_all(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while mgr.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
        _reap()
        mgr.destroy()
        assert not mgr.exists()
        assert all(not d.exists() for d in mgr.dirs().values())


_STARTED: list[subprocess.Popen[bytes]] = []


def _start_in(mgr: CgroupManager, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start `argv` held on a pipe until it is in the cgroup, then let it run."""
    r, w = os.pipe()
    try:
        p = subprocess.Popen(
            ["/bin/busybox", "sh", "-c", 'read go && exec "$@" </dev/null', "sh", *argv],
            stdin=r,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(r)
    _STARTED.append(p)
    try:
        mgr.add_process(p.pid)
    finally:
        os.write(w, b"go\n")
        os.close(w)
    return p


def _reap() -> None:
    while _STARTED:
        p = _STARTED.pop()
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()


def _read(mgr: CgroupManager, name: str) -> str:
    for d in mgr.dirs().values():
        if (d / name).exists():
            return (d / name).read_text().strip()
    raise AssertionError(f"{name} not found in {mgr.dirs()}")


def test_limits_read_back_and_process_joins(cgroup: CgroupManager) -> None:
    mib = 1 << 20
    cgroup.apply(
        parse_resources(
            {
                "memory": {"limit": 64 * mib, "swap": 64 * mib, "reservation": 32 * mib},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                "pids": {"limit": 20},
            },
            "linux.resources",
        )
    )
    if cgroup.version == "v2":
        assert _read(cgroup, "memory.max") == str(64 * mib)
        assert _read(cgroup, "memory.low") == str(32 * mib)
        assert _read(cgroup, "cpu.max") == "50000 100000"
        assert _read(cgroup, "cpu.weight") == "20"
        if (cgroup.dirs()[""] / "memory.swap.max").exists():
            assert _read(cgroup, "memory.swap.max") == "0"
    else:
        assert _read(cgroup, "memory.limit_in_bytes") == str(64 * mib)
        assert _read(cgroup, "memory.soft_limit_in_bytes") == str(32 * mib)
        assert _read(cgroup, "cpu.cfs_quota_us") == "50000"
        assert _read(cgroup, "cpu.cfs_period_us") == "100000"
        assert _read(cgroup, "cpu.shares") == "512"
        if any((d / "memory.memsw.limit_in_bytes").exists() for d in cgroup.dirs().values()):
            assert _read(cgroup, "memory.memsw.limit_in_bytes") == str(64 * mib)
    assert _read(cgroup, "pids.max") == "20"
    assert _read(cgroup, "cpuset.cpus") == "0"

    p = _start_in(cgroup, ["/bin/busybox", "sleep", "30"])
    assert cgroup.pids() == [p.pid]
    lines = Path(f"/proc/{p.pid}/cgroup").read_text().splitlines()
    if cgroup.version == "v2":
        assert f"0::{cgroup.path}" in lines
    else:
        ctrl_lines = [ln for ln in lines if ":memory:" in ln or ":pids:" in ln]
        assert len(ctrl_lines) == 2
        assert all(ln.endswith(f":{cgroup.path}") for ln in ctrl_lines)
    cgroup.kill_all(signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL


def test_pids_limit_stops_a_fork_bomb(cgroup: CgroupManager) -> None:
    cgroup.apply(parse_resources({"pids": {"limit": 6}}, "linux.resources"))
    # A bounded bomb: 20 attempts, each child sleeps; it reports how far it got.
    code = (
        "import os, json, time\n"
        "ok = failed = 0\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except BlockingIOError:\n"
        "        failed += 1\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    ok += 1\n"
        "print(json.dumps({'ok': ok, 'failed': failed}), flush=True)\n"
        "time.sleep(30)\n"
    )
    p = _start_in(cgroup, [PY, "-c", code])
    assert p.stdout is not None
    got = json.loads(p.stdout.readline())
    # The limit counts the python itself: at most 5 children.
    assert got["ok"] <= 5
    assert got["failed"] >= 15
    assert got["ok"] + got["failed"] == 20
    assert len(cgroup.pids()) <= 6
    st = cgroup.stats()["pids"]
    assert isinstance(st, dict)
    assert st["limit"] == 6
    assert 1 <= st["current"] <= 6
    cgroup.kill_all(signal.SIGKILL)
    p.wait(timeout=10)


def test_memory_limit_oom_kills_a_hog(cgroup: CgroupManager) -> None:
    mib = 1 << 20
    cgroup.apply(
        parse_resources({"memory": {"limit": 32 * mib, "swap": 32 * mib}}, "linux.resources")
    )
    assert cgroup.oom_kill_count() == 0
    # Touch every page (bytes * n writes them) until the kernel steps in; bounded at 512 MiB.
    hog = "chunks = []\nfor _ in range(512):\n    chunks.append(b'x' * (1 << 20))\nprint('survived')\n"
    p = _start_in(cgroup, [PY, "-c", hog])
    out, _ = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert b"survived" not in out
    assert cgroup.oom_kill_count() >= 1


def test_freeze_and_thaw_a_running_process(cgroup: CgroupManager, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    code = (
        "import sys, time\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    open(sys.argv[1], 'w').write(str(i))\n"
        "    time.sleep(0.005)\n"
    )
    p = _start_in(cgroup, [PY, "-c", code, str(counter)])

    def value() -> int:
        try:
            return int(counter.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def advances(within: float) -> bool:
        start = value()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if value() > start + 2:
                return True
            time.sleep(0.02)
        return False

    assert advances(30)  # started (slow in an emulated VM)
    assert not cgroup.is_frozen()
    cgroup.freeze()
    assert cgroup.is_frozen()
    assert not advances(0.5)
    cgroup.thaw()
    assert not cgroup.is_frozen()
    assert advances(30)
    assert p.poll() is None
    cgroup.kill_all(signal.SIGTERM)
    assert p.wait(timeout=10) == -signal.SIGTERM


def test_stats_report_usage(cgroup: CgroupManager) -> None:
    # Burn 0.2 s of CPU time (not wall time: the host may be busy), bounded by 30 s.
    spin = (
        "import time\n"
        "t = time.monotonic()\n"
        "while time.process_time() < 0.2 and time.monotonic() - t < 30:\n"
        "    pass\n"
        "x = b'y' * (8 << 20)\n"
        "print('ok', flush=True)\n"
        "time.sleep(30)\n"
    )
    p = _start_in(cgroup, [PY, "-c", spin])
    assert p.stdout is not None
    assert p.stdout.readline() == b"ok\n"
    st = cgroup.stats()
    cpu, mem, pids = st["cpu"], st["memory"], st["pids"]
    assert isinstance(cpu, dict)
    assert isinstance(mem, dict)
    assert isinstance(pids, dict)
    assert cpu["usage"]["total"] >= 150_000_000  # ns: the spin's 0.2 s, give or take
    assert mem["usage"]["usage"] >= 4 << 20
    assert mem["usage"]["limit"] > 0
    assert pids["current"] == 1
    json.dumps(st)  # the shape `events --stats` prints
    cgroup.kill_all(signal.SIGKILL)
    p.wait(timeout=10)


def test_destroy_removes_nested_cgroups(cgroup: CgroupManager) -> None:
    for d in cgroup.dirs().values():
        (d / "inner" / "deeper").mkdir(parents=True)
    cgroup.destroy()
    assert not cgroup.exists()
    cgroup.destroy()  # idempotent


_DEV_PROBE = (
    "import json, os, sys\n"
    "out = {}\n"
    "for name in ('null', 'zero', 'full'):\n"
    "    try:\n"
    "        os.close(os.open('/dev/' + name, os.O_RDWR))\n"
    "        out[name] = 0\n"
    "    except OSError as e:\n"
    "        out[name] = e.errno\n"
    "for name, minor in (('mk-null', 3), ('mk-full', 7)):\n"
    "    try:\n"
    "        os.mknod(os.path.join(sys.argv[1], name), 0o600 | 0o020000, os.makedev(1, minor))\n"
    "        out[name] = 0\n"
    "    except OSError as e:\n"
    "        out[name] = e.errno\n"
    "print(json.dumps(out), flush=True)\n"
)


def _device_probe(mgr: CgroupManager, tmp: Path) -> dict[str, int]:
    tmp.mkdir(exist_ok=True)
    p = _start_in(mgr, [PY, "-c", _DEV_PROBE, str(tmp)])
    assert p.stdout is not None
    out = p.stdout.readline()
    p.wait(timeout=60)
    for f in tmp.iterdir():
        f.unlink()
    return dict(json.loads(out))


@pytest.mark.usefixtures("_portique_parent")
def test_device_rules_are_enforced(tmp_path: Path) -> None:
    """v1: devices.allow/deny; v2: the compiled eBPF program, attached
    through portique.linux.bpf."""
    cid = f"test-{uuid.uuid4().hex[:12]}"
    mgr: CgroupManager = open_manager(None, cid)
    mgr.create()
    try:
        rules: list[dict[str, object]] = [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ]
        mgr.apply(parse_resources({"devices": rules}, "linux.resources"))
        eperm = 1
        assert _device_probe(mgr, tmp_path / "a") == {
            "null": 0,
            "zero": eperm,
            "full": eperm,
            "mk-null": 0,
            "mk-full": eperm,
        }
        # An update may widen the rules (v2: the old program is replaced, not ANDed).
        rules.append({"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"})
        mgr.apply(parse_resources({"devices": rules}, "linux.resources"))
        got = _device_probe(mgr, tmp_path / "b")
        assert got["zero"] == 0
        assert got["full"] == eperm
    finally:
        _reap()
        mgr.destroy()
    assert not mgr.exists()
