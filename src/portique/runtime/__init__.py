"""The OCI runtime library: bundle -> isolated process.

    from portique.runtime import Runtime, State, Status
    rt = Runtime(Path("/run/portique-runtime"))
    rt.create("c1", bundle); rt.start("c1"); rt.state("c1"); rt.delete("c1")

`Runtime` is imported lazily so `from portique.runtime import Status` stays cheap.
"""

from __future__ import annotations

from portique.runtime.state import State as State
from portique.runtime.state import Status as Status

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from portique.runtime.container import Runtime as Runtime


def __getattr__(name: str) -> object:
    if name == "Runtime":
        from portique.runtime.container import Runtime

        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Runtime", "State", "Status"]
