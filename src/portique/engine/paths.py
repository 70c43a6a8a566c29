"""Where a container's files live.

<root>/containers/<id>/            the bundle directory
    config.json                    OCI spec written at each start
    rootfs/                        the overlay mount while running
    hosts hostname resolv.conf     bind-mounted into /etc
    <id>-json.log                  Docker's json-file log
<root>/volumes/<name>/_data        a local volume (Docker's layout)
<runroot>/containers/<id>/         the monitor's socket and error log
<runroot>/runtime/                 the runtime library's state
"""

from __future__ import annotations

from pathlib import Path

from portique.oci.value import value


@value
class ContainerPaths:
    """The places of container `id` under an engine's root and run root
    (`Engine.paths(id)`)."""

    id: str
    root: Path
    run_root: Path

    @property
    def dir(self) -> Path:
        return self.root / "containers" / self.id

    @property
    def log(self) -> Path:
        return self.dir / f"{self.id}-json.log"

    @property
    def run_dir(self) -> Path:
        return self.run_root / "containers" / self.id

    @property
    def socket(self) -> Path:
        return self.run_dir / "m.sock"

    @property
    def runtime_root(self) -> Path:
        return self.run_root / "runtime"
