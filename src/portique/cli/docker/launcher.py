"""Write the `portique` launcher script.

    python -m portique.cli.docker.launcher DEST

Every `portique` command is a fresh interpreter, so its start-up is paid by
each `run`, `exec` and `ps`. pip's console script starts the venv's python
with `site`, which scans the site-packages directories and runs their .pth
files (setuptools' distutils hack imports a module; other installed .pth files
may import whole packages), and the wrapper itself imports `re`: ~20 ms before
portique's first line, against ~6 ms for `python -S`. The launcher written
here runs the same interpreter with `-S` (no site) and appends to sys.path
exactly the directories site adds for this installation (its site-packages
and what their .pth files name, e.g. an editable install's source tree),
found now, at install time, by asking the interpreter. What the .pth files
would *run* is not run: portique needs only their paths. Unlike
portique-runtime's launcher (cli/runc/launcher.py, `-I -S`), the PYTHON*
variables keep their meaning (PYTHONPATH, PYTHONUNBUFFERED, PYTHONVERBOSE...),
as with pip's script: the CLI is a user's command, not one other daemons run.

Because the paths are fixed when it is written, write it again after moving
the installation or adding a dependency (scripts/setup.sh runs this after
`pip install`). `python -m portique` and pip's own script keep working.
"""

from __future__ import annotations

import os
import sys

from portique import launcher

ENTRY = "from portique.cli.docker.main import entry\n\nraise SystemExit(entry())\n"
_PRINT_PATH = "import sys; print('\\0'.join(sys.path))"


def _path_of(python: str, *flags: str) -> list[str]:
    import subprocess

    out = subprocess.run(
        [python, *flags, "-c", _PRINT_PATH],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    ).stdout
    return out.rstrip("\n").split("\0")


def site_entries(python: str) -> list[str]:
    """The sys.path entries `site` adds for `python`, in order (asked with -E:
    this shell's PYTHONPATH is not the installation's)."""
    bare = set(_path_of(python, "-E", "-S"))
    return [p for p in _path_of(python, "-E") if p and p not in bare]


def launcher_text(python: str, entries: list[str]) -> str:
    """The script: a `#!python -S` line, then sys.path and entry()."""
    doc = "portique, started without site (written by portique.cli.docker.launcher)."
    return launcher.script_text(python, "-S", doc, entries, ENTRY)


def write_launcher(dest: str, python: str | None = None) -> None:
    """Write the launcher to `dest` (mode 0755), replacing it atomically."""
    python = python or sys.executable
    launcher.write_script(dest, launcher_text(python, site_entries(python)))


def main(argv: list[str] | None = None) -> int:
    return launcher.main(argv, "portique.cli.docker.launcher", write_launcher)


if __name__ == "__main__":
    raise SystemExit(main())
