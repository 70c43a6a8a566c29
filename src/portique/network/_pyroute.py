"""pyroute2's IPRoute without pyroute2's package-wide import bill.

`import pyroute2` runs its __init__, which imports every family it supports
(conntrack, ipdb, ndb, wireguard, nl80211, plan9, ...): ~100 ms on this VM,
paid by every `portique run` that wires a network. We need two modules of it.

So, when nothing has imported pyroute2 yet, the package is registered with its
real spec but without running its __init__; submodules import as usual. The
first access to anything else on the package (`pyroute2.IPRoute`,
`from pyroute2 import NDB`) runs the real __init__ into the same module
object, so other code sees the complete package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def _lean_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # let the ordinary import report what is wrong
    pkg = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str) -> Any:
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}"):
            # `from pyroute2 import config`: a submodule, no need for the __init__.
            return importlib.import_module(f"pyroute2.{name}")
        # Anything else: become the complete package, once.
        pkg.__dict__.pop("__getattr__", None)
        loader.exec_module(pkg)
        return getattr(pkg, name)

    pkg.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["pyroute2"] = pkg


_lean_package()

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
