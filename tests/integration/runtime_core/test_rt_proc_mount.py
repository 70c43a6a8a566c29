"""proc and sysfs are mounted on a plain directory of the root, or not at all.

The class of runc's CVE-2019-16884 and CVE-2019-19921: an image (or a volume
shared with another container) whose /proc is a symlink steers the procfs
mount to where the link points, and the runtime's later steps that trust
/proc to be procfs (masked and read-only paths, sysctls, /proc/self/fd) then
act on something else. runc and youki refuse such a destination; without
the check here, procfs landed where the image chose and a /sys symlinked to
/proc put sysfs over procfs, so the masks on /proc/* silently found nothing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from portique.errors import PortiqueError
from portique.runtime import Runtime
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, new_id

# What the container's /proc is, and whether the mask on /proc/timer_list holds.
PROBE = "stat -f -c %T /proc; wc -c </proc/timer_list"


def _rootfs(tmp_path: Path, busybox_rootfs: Path) -> Path:
    rootfs = tmp_path / "bundle" / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "etc" / "fakeproc").mkdir(parents=True, exist_ok=True)
    return rootfs


def _run(rt: Runtime, tmp_path: Path) -> str:
    out = Outputs(tmp_path)
    try:
        bundle = tmp_path / "bundle"
        make_bundle(tmp_path, bundle / "rootfs", make_config(["sh", "-c", PROBE]))
        rt.run(new_id(), bundle, stdio=out.stdio)
    finally:
        out.close()
    return out.text()


@pytest.mark.parametrize(
    ("link", "target", "field"),
    [
        ("proc", "/etc/fakeproc", "mounts[0] /proc: proc"),
        ("proc", "etc/fakeproc", "mounts[0] /proc: proc"),
        ("sys", "/proc", "mounts[5] /sys: sysfs"),
    ],
)
def test_symlinked_proc_or_sys_is_refused(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, link: str, target: str, field: str
) -> None:
    rootfs = _rootfs(tmp_path, busybox_rootfs)
    shutil.rmtree(rootfs / link, ignore_errors=True)
    (rootfs / link).symlink_to(target)
    wanted = re.escape(f"{field} must be mounted on a plain directory: /{link} is a symlink")
    with pytest.raises(PortiqueError, match=wanted):
        _run(rt, tmp_path)
    assert rt.list() == []
    # Nothing was mounted through the link into the image's directory.
    assert list((rootfs / "etc" / "fakeproc").iterdir()) == []


def test_plain_proc_directory_still_works(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    _rootfs(tmp_path, busybox_rootfs)
    assert _run(rt, tmp_path).split() == ["proc", "0"]
