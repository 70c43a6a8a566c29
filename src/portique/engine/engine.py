"""The engine of one root: each face builds one, every operation takes it.

    eng = Engine(Path("/var/lib/portique"), Path("/run/portique"))
    row = containers.create(eng, config, host_config, networking, name="web")
    containers.start(eng, row.id)

`root` holds what must survive a reboot (portique.db, blobs, snapshots,
container and volume directories), `runroot` what must not (the runtime's
state, the monitors' sockets, the network layer's pid files). The faces
choose them (`--root`, `--runroot`, or their defaults); nothing below a face
reads the environment for them. A monitor and a DNS server, which outlive
the command that started them, get both as arguments.

Building an Engine opens nothing. The database, the image store and the
network layer open on first use, so `portique ps` never imports the image
store and `portique run --network none` never the network layer. A child of
a fork (the start protocol's monitor, a warm process's worker) gets fresh
handles: a SQLite connection must not cross a fork, so the parent's are
dropped there, never closed (closing would touch the parent's locks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from portique.engine.paths import ContainerPaths

if TYPE_CHECKING:
    import sqlite3

    from portique import journal
    from portique.image.images import Images
    from portique.network.networks import Networks
    from portique.runtime import Runtime

_INHERITED: list[object] = []  # a fork's copies of the parent's handles (see _owned)

DEFAULT_ROOT = Path("/var/lib/portique")
DEFAULT_RUNROOT = Path("/run/portique")

__all__ = ["DEFAULT_ROOT", "DEFAULT_RUNROOT", "Engine"]


class Engine:
    """One engine root and run root, with lazily opened stores."""

    def __init__(self, root: Path, runroot: Path) -> None:
        self.root = Path(root)
        self.runroot = Path(runroot)
        self._pid = os.getpid()
        self._db: sqlite3.Connection | None = None
        self._images: Images | None = None
        self._networks: Networks | None = None
        self._runtime: Runtime | None = None

    def __repr__(self) -> str:
        return f"Engine(root={str(self.root)!r}, runroot={str(self.runroot)!r})"

    # -- stores, opened on first use ------------------------------------------

    def _owned(self) -> None:
        """Forget handles inherited across a fork (see the module docstring)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            # Kept referenced, never finalized: closing a SQLite connection in the
            # child could checkpoint or unlink the parent's write-ahead log.
            _INHERITED.append((self._db, self._images, self._networks))
            self._db = self._images = self._networks = None
            self._runtime = None

    @property
    def db(self) -> sqlite3.Connection:
        """portique.db with the engine's tables and the journal migrated."""
        self._owned()
        if self._db is None:
            from portique.engine import db

            self._db = db.open_db(self.root)
        return self._db

    @property
    def images(self) -> Images:
        self._owned()
        if self._images is None:
            from portique.image.images import Images

            self._images = Images(self.root)
        return self._images

    @property
    def networks(self) -> Networks:
        self._owned()
        if self._networks is None:
            from portique.linux.ns import in_user_namespace

            if in_user_namespace():  # a rootless engine: its own netns (engine/rootlessnet.py)
                from portique.engine.rootlessnet import NetnsNetworks

                self._networks = cast("Networks", NetnsNetworks(self.root, self.runroot))
            else:
                from portique.network.networks import Networks

                self._networks = Networks(self.root, run_root=self.runroot)
        return self._networks

    def close(self) -> None:
        """Close what this process opened (handles a fork left behind are not ours)."""
        self._owned()
        db, images, networks = self._db, self._images, self._networks
        self._db = self._images = self._networks = None
        for store in (images, networks, db):
            if store is not None:
                store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- places -----------------------------------------------------------------

    def paths(self, cid: str) -> ContainerPaths:
        return ContainerPaths(cid, self.root, self.runroot)

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def runtime_root(self) -> Path:
        """The runtime library's state directory."""
        return self.runroot / "runtime"

    def runtime(self) -> Runtime:
        """The runtime library on this engine's state directory: one per process,
        so what it caches (the containers' parsed specs) serves every caller."""
        self._owned()
        if self._runtime is None:
            from portique.runtime import Runtime

            self._runtime = Runtime(self.runtime_root)
        return self._runtime

    # -- crash recovery -----------------------------------------------------------

    def recover(
        self, *, images: bool = False, prune: bool = False, warn: bool = False
    ) -> list[journal.Entry]:
        """Finish or undo what dead operations left (engine/recovery.py); the
        operations that make or delete state call this first. `images`: also
        sweep the image store's dead ingests; `prune`: abandoned downloads and
        orphan volume directories too; `warn`: say what must wait."""
        from portique.engine.recovery import recover

        return recover(self, images=images, prune=prune, warn=warn)
