"""The lean pyroute2 import stays transparent to anyone who wants the whole package."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from portique.network import _pyroute
assert "pyroute2.ndb.main" not in sys.modules, "the package __init__ ran"
import pyroute2
from pyroute2 import IPRoute, NDB
from pyroute2 import config
assert IPRoute is _pyroute.IPRoute
assert pyroute2.NDB is NDB
assert "pyroute2.ndb.main" in sys.modules
assert config.__name__ == "pyroute2.config"
print("ok")
"""


def test_lean_import_then_full_package() -> None:
    r = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"
