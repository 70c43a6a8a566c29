"""The read-only interpreter as root: the mount scripts/setup.sh makes, and
the entry points making it again after a reboot (linux/selfexe.py)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.linux import mount as m
from portique.linux import selfexe
from support.escape import Interpreter


def mounts_at(path: Path) -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if m.unescape_mountinfo(line.split()[4].encode()) == str(path))


@pytest.fixture
def copy(interp: Interpreter) -> Iterator[Interpreter]:
    yield interp
    while mounts_at(interp.path):
        m.umount(interp.path, m.MNT_DETACH)


def test_mount_read_only(copy: Interpreter) -> None:
    assert selfexe.protection(str(copy.path)) is None
    selfexe.mount_read_only(str(copy.path))
    assert selfexe.protection(str(copy.path)) == selfexe.READ_ONLY
    with pytest.raises(OSError, match="Read-only file system") as exc:
        os.open(copy.path, os.O_WRONLY)
    assert exc.value.errno == errno.EROFS
    selfexe.mount_read_only(str(copy.path))  # already read-only: no second mount
    assert mounts_at(copy.path) == 1


PROBE = """
import json, os
from portique.linux import selfexe
selfexe.ensure_protected()
print(json.dumps({
    "exe": os.readlink("/proc/self/exe"),
    "protection": selfexe.protection(),
    "remounted": os.environ.get("PORTIQUE_EXE_REMOUNTED"),
}))
"""


def test_a_marked_copy_is_mounted_again_after_a_reboot(copy: Interpreter) -> None:
    # setup.sh's layout, its mount gone (as after a reboot).
    (copy.path.parent / f".{copy.path.name}{selfexe.MARKER_SUFFIX}").write_text("read-only\n")
    for _ in range(2):
        proc = subprocess.run(
            [str(copy.path), "-c", PROBE],
            env=copy.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(proc.stdout)
        # The file itself, now on its read-only mount: no sealed copy needed.
        assert out == {"exe": str(copy.path), "protection": "read-only", "remounted": None}
        assert mounts_at(copy.path) == 1
    assert copy.unchanged()
