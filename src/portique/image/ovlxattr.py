"""The xattrs overlayfs keeps its own metadata in.

As root, overlayfs uses trusted.overlay.*; inside a user namespace (a
rootless engine, engine/rootless.py) trusted.* cannot be set, so the overlay
is mounted with `userxattr` and uses user.overlay.* instead. Either name is
overlayfs's, never a layer's: unpack drops them from layers (a layer's
user.overlay.opaque would otherwise hide lower files from a rootless
overlay), and the layer writer never copies them out of an upper dir.
"""

from __future__ import annotations

import functools
from typing import Final

PRIVATE_PREFIXES: Final = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.")
# fuse-overlayfs (image/fuseoverlay.py) reads user.overlay.opaque and writes its own.
_ROOTLESS_OPAQUE: Final = ("user.overlay.opaque", "user.fuseoverlayfs.opaque")


@functools.cache
def rootless() -> bool:
    """True in a user namespace (the process never changes it after start)."""
    from portique.linux.ns import in_user_namespace

    return in_user_namespace()


def opaque() -> str:
    """The name of the opaque-directory xattr the mounts of this process use."""
    return "user.overlay.opaque" if rootless() else "trusted.overlay.opaque"


def is_opaque(target: int | str, *, follow_symlinks: bool = True) -> bool:
    """Whether the upper directory `target` (an fd, or a name relative to the
    cwd) is opaque; an error reading it counts as not opaque."""
    import os

    names = _ROOTLESS_OPAQUE if rootless() else ("trusted.overlay.opaque",)
    for name in names:
        try:
            if os.getxattr(target, name, follow_symlinks=follow_symlinks) == b"y":
                return True
        except OSError:
            continue
    return False


# fuse-overlayfs marks an opaque directory three ways: its xattr, and in the
# directory a file `.wh..wh..opq` and a whiteout named `.wh..opq`.
_FUSE_MARKERS: Final = frozenset({".wh..wh..opq", ".wh..opq"})


def listing(names: list[str]) -> list[str]:
    """An upper directory's entries less fuse-overlayfs's opaque markers (the
    xattr says it: is_opaque), sorted."""
    if rootless():
        names = [n for n in names if n not in _FUSE_MARKERS]
    return sorted(names)


def mount_options() -> str:
    """The fixed overlay options: no index, no metacopy, no redirects made
    (upper dirs must stay convertible to layers). Inside a user namespace the
    kernel refuses redirect_dir=off and wants userxattr; nofollow makes none
    and follows none."""
    if rootless():
        return "userxattr,index=off,metacopy=off,redirect_dir=nofollow"
    return "index=off,redirect_dir=off,metacopy=off"


def is_private(name: str) -> bool:
    return name.startswith(PRIVATE_PREFIXES)
