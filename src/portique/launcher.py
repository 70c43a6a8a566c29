"""Launcher scripts: what `portique` (cli/docker/launcher.py) and
`portique-runtime` (cli/runc/launcher.py) share.

Each face writes a small Python script that starts the venv's interpreter
with its own flags (no `site`) and puts on sys.path, fixed at install time,
the directories it needs. The script's text and its atomic, executable write
are the same for both; which flags, which directories and which entry point
are each face's own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def script_text(python: str, flags: str, doc: str, path: list[str], body: str) -> str:
    """`#!python FLAGS`, the docstring, `sys.path += path`, then `body`."""
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ValueError(f"interpreter path {python!r}: want an absolute path without spaces")
    return f'#!{python} {flags}\n"""{doc}"""\nimport sys\n\nsys.path += {path!r}\n{body}'


def write_script(dest: str, text: str) -> None:
    """Write `text` to `dest` (mode 0755), replacing it atomically."""
    from pathlib import Path

    from portique.fileio import atomic_file

    with atomic_file(Path(dest), 0o755, fsync=False) as f:
        f.write(text.encode())
        os.fchmod(f.fileno(), 0o755)  # not subject to the umask


def main(argv: list[str] | None, module: str, write: Callable[[str], None]) -> int:
    """`python -m MODULE DEST`: `write(DEST)`; 2 and a usage line otherwise."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write(f"usage: python -m {module} DEST\n")
        return 2
    write(args[0])
    return 0
