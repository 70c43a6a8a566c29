"""Container roots through fuse-overlayfs, where a rootless engine's kernel
refuses overlayfs inside its user namespace (Linux before 5.11).

The storage's driver is the engine root's choice: `<root>/storage-driver`
holds `overlay` (the kernel's, as root always uses) or `fuse-overlayfs`;
without that file a rootless engine tries the kernel's first and falls back
to fuse-overlayfs (Debian's package, with /dev/fuse usable by the user) when
the kernel refuses, and fails naming both when neither works. Same upper
and work directories, same whiteouts (0/0 character devices, which a user
namespace may make); fuse-overlayfs reads user.overlay.opaque and writes
user.fuseoverlayfs.opaque (image/ovlxattr.py reads both). Lowers are passed
by path: the helper is another process, so /proc/self/fd names would be its
own.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

from portique.errors import PortiqueError

DRIVER_FILE = "storage-driver"
DRIVERS = ("overlay", "fuse-overlayfs")


def chosen(root: Path) -> str | None:
    """The driver `<root>/storage-driver` names, or None (automatic)."""
    try:
        word = (root / DRIVER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if word not in DRIVERS:
        raise PortiqueError(
            f"{root / DRIVER_FILE}: unknown storage driver {word!r} (want overlay or fuse-overlayfs)"
        )
    return word


def binary() -> str | None:
    import shutil  # here: every container start reads `chosen`, few mount through this

    return shutil.which("fuse-overlayfs", path="/usr/bin:/bin:/usr/sbin:/sbin")


def mount(lowers: Sequence[Path], upper: Path, work: Path, rootfs: Path, options: str) -> None:
    """Mount `rootfs` with fuse-overlayfs (its daemon stays until the unmount)."""
    path = binary()
    if path is None:
        raise OSError(errno.ENOENT, "fuse-overlayfs is not installed (Debian's fuse-overlayfs)")
    for p in (upper, work, *lowers):
        if "," in str(p) or ":" in str(p):
            raise PortiqueError(f"overlay path {p} contains ',' or ':'")
    data = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
    import subprocess

    done = subprocess.run(
        [path, "-o", f"{data},{options}", str(rootfs)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise OSError(errno.EPERM, f"fuse-overlayfs: {why}")


def neither(native: OSError, fuse: OSError | None) -> PortiqueError:
    """The one error when no overlay can be mounted."""
    import os

    fuse_why = fuse.strerror if fuse is not None else "not tried"
    return PortiqueError(
        f"cannot mount a container root: the kernel's overlayfs refused ({native.strerror};"
        f" inside a user namespace it needs Linux 5.11 or later, this is {os.uname().release})"
        f" and fuse-overlayfs failed ({fuse_why}; install Debian's fuse-overlayfs and make"
        " /dev/fuse usable: mode 0666)"
    )
