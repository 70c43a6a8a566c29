"""200 create/start/delete cycles leave no fd, mount or cgroup behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, new_id


def _mounts(*paths: Path) -> list[str]:
    # Only ours: other suites may mount and unmount on this host meanwhile.
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if any(str(p) in line for p in paths)]


def test_cycles_leak_nothing(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["true"]))
    out = Outputs(tmp_path)
    fds_before = sorted(os.listdir("/proc/self/fd"))
    mounts_before = _mounts(tmp_path, busybox_rootfs)
    prefix = new_id().rsplit("-", 1)[0]

    def ours() -> list[Path]:
        return [p for p in Path("/sys/fs/cgroup").glob("*/portique/*") if p.name.startswith(prefix)]

    for i in range(200):
        cid = new_id()
        rt.create(cid, bundle, stdio=out.stdio)
        if i % 20 == 0:
            # Exec into some of them too, while created.
            assert rt.exec(cid, parse_process({"args": ["true"]}), stdio=out.stdio) == 0
        try:
            rt.start(cid)
        except Exception as e:
            raise AssertionError(f"cycle {i}: {e}; output: {out.text()!r}") from e
        deadline = time.monotonic() + 10
        while rt.state(cid).status is not Status.STOPPED and time.monotonic() < deadline:
            time.sleep(0.002)
        rt.delete(cid)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
    out.close()
    assert _mounts(tmp_path, busybox_rootfs) == mounts_before == []
    assert ours() == []
    assert rt.list() == []
