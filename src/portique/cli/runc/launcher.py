"""Write a lean `portique-runtime` launcher script.

    python -m portique.cli.runc.launcher DEST

containerd's shim starts the runtime several times per container, so
interpreter start-up is a large share of every call. The console script pip
generates runs the venv's python with `site`: it scans three site-packages
directories, runs their .pth files (setuptools' distutils hack imports a
module) and the wrapper itself imports `re`. The launcher written here runs
the same interpreter with `-I -S` (no site, no PYTHON* variables, no user
site) and appends to sys.path, after the standard library as site would, only
what the runtime imports: the directory holding `portique` and the one
holding libseccomp's binding (Debian's python3-seccomp, in
/usr/lib/python3/dist-packages), found now, at install time. It saves
~10 ms of every call.

Because the paths are fixed when it is written, write it again after moving
the installation (scripts/setup.sh may run this after `pip install`).
"""

from __future__ import annotations

import os
import sys

from portique import launcher

# Third-party modules the runtime may import: libseccomp's binding (every
# container with a profile) and pyroute2 (`explain` reads a container's
# network through netlink). Their directories go on sys.path after
# portique's; entries cost nothing until an import misses in them.
RUNTIME_DEPENDENCIES = ("seccomp", "pyroute2")


def import_roots() -> list[str]:
    """The sys.path entries the runtime needs: portique's, then its dependencies'."""
    import importlib.util

    import portique

    roots = [os.path.dirname(os.path.dirname(os.path.abspath(portique.__file__)))]
    for name in RUNTIME_DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        # A package's origin is its __init__.py: its root is two levels up.
        top = os.path.dirname(spec.origin)
        if spec.submodule_search_locations is not None:
            top = os.path.dirname(top)
        roots.append(top)
    return list(dict.fromkeys(roots))


def launcher_text(python: str, roots: list[str]) -> str:
    """The script: a `#!python -IS` line, then sys.path and main()."""
    doc = "portique-runtime, started without site (written by portique.cli.runc.launcher)."
    body = "from portique.cli.runc.quick import entry\n\nentry()\n"
    return launcher.script_text(python, "-IS", doc, roots, body)


def write_launcher(dest: str, python: str | None = None) -> None:
    """Write the launcher to `dest` (mode 0755), replacing it atomically."""
    launcher.write_script(dest, launcher_text(python or sys.executable, import_roots()))


def main(argv: list[str] | None = None) -> int:
    return launcher.main(argv, "portique.cli.runc.launcher", write_launcher)


if __name__ == "__main__":
    raise SystemExit(main())
