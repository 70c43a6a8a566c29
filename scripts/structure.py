#!/usr/bin/env python3
"""Check the shape of src/portique: imports point downward, modules stay small.

    python3 scripts/structure.py [--max-lines N]

Every package under src/portique has a rank (the layers of
docs/ARCHITECTURE.md); a module may import a package of a lower rank, the
shared base modules (src/portique/*.py), and its own package. Imports are
read from the syntax tree, so lazy imports inside functions and imports
under TYPE_CHECKING count too: a type-only upward import is still a
dependency a reader must follow upward. A package missing from the table
below is an error, so a new package gets a place in the layers when it is
made. Exit 1 with one line per violation.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "portique"

# Lower ranks are lower layers. Packages of the same rank do not import each
# other (runtime/ and image/ are siblings, so are build/ and network/).
RANKS: dict[str, int] = {
    "linux": 0,  # the only code that calls the kernel
    "oci": 2,  # typed models of hostile documents
    "image": 3,
    "runtime": 3,
    "build": 4,
    "network": 4,
    "engine": 5,
    # The warm fork-server: preloads engine, image and runtime; forks a worker
    # per request and runs the handler a face gives it (it imports no face).
    "warm": 6,
    "cli": 7,  # faces
    "api": 7,
}
BASE = 1  # src/portique/*.py: errors, db, fileio, journal, ...
# Base modules sit on linux/ only; the package's entry point is a face.
ENTRY_POINTS = {"__main__": 8}
MAX_LINES = 700


def unit_of(path: Path, src: Path = SRC) -> str:
    """The package (first directory under portique/) or base module of `path`."""
    rel = path.relative_to(src)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return f"base:{rel.stem}"


def rank_of(unit: str) -> int | None:
    if unit.startswith("base:"):
        name = unit.removeprefix("base:")
        return ENTRY_POINTS.get(name, BASE)
    return RANKS.get(unit)


def imported_units(tree: ast.AST, src: Path = SRC) -> list[tuple[int, str]]:
    """(line, unit) for each portique module imported anywhere in `tree`."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "portique":
                names = [f"portique.{a.name}" for a in node.names]
            else:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] != "portique" or len(parts) < 2:
                continue
            top = parts[1]
            if (src / top).is_dir():
                found.append((node.lineno, top))
            elif (src / f"{top}.py").is_file():
                found.append((node.lineno, f"base:{top}"))
            # else: a name from portique/__init__.py (__version__): the root
    return found


def check(max_lines: int = MAX_LINES, src: Path = SRC) -> list[str]:
    """One line per module over `max_lines` and per import that points up or sideways."""
    problems = []
    for path in sorted(src.rglob("*.py")):
        shown = path.relative_to(src.parent.parent)
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > max_lines:
            problems.append(f"{shown}: {lines} lines, over {max_lines}: split it by concern")
        mine = unit_of(path, src)
        my_rank = rank_of(mine)
        if my_rank is None:
            problems.append(f"{shown}: package {mine!r} has no rank in scripts/structure.py")
            continue
        for line, other in imported_units(ast.parse(text, str(path)), src):
            if other == mine:
                continue
            other_rank = rank_of(other)
            if other_rank is None:
                continue  # reported once, for that package's own modules
            if other.startswith("base:") and other_rank == BASE and my_rank >= BASE:
                continue  # the base modules serve every layer above linux/ (and each other)
            if other_rank >= my_rank:
                problems.append(
                    f"{shown}:{line}: {mine} (rank {my_rank}) imports {other} "
                    f"(rank {other_rank}): imports must point downward"
                )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=MAX_LINES)
    args = parser.parse_args()
    problems = check(args.max_lines)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
