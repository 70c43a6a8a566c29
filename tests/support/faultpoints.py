"""The crash points in portique's source (`faults.point("...")`), found by reading it,
and which fault-injection scenario reaches each (tests/integration/faults)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "portique"

# Point name prefix (or full name) -> the scenario of test_fault_injection.py
# that passes it. A new point with an unknown prefix fails the unit test until
# a scenario reaches it.
SCENARIOS: dict[str, str] = {
    "pull.": "pull",
    "unpack.": "pull",
    "load.": "load",
    "build.": "build",
    "create.": "run",
    "monitor.autoremove-row-deleted": "run-rm",
    "monitor.autoremove-told": "run-rm",
    "monitor.": "run",
    "rm.": "rm",
    "rmi.": "rmi",
}


def scenario_of(point: str) -> str | None:
    if point in SCENARIOS:
        return SCENARIOS[point]
    for prefix, name in SCENARIOS.items():
        if prefix.endswith(".") and point.startswith(prefix):
            return name
    return None


def calls(src: Path = SRC) -> list[tuple[str, Path, int]]:
    """Every `faults.point(...)` call: (its argument if a string literal, else "", file, line)."""
    out = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "point"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "faults"
            ):
                continue
            arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
            name = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
            out.append((name, path, node.lineno))
    return out


def points(src: Path = SRC) -> list[str]:
    """The point names, sorted (each appears once: the unit test checks)."""
    return sorted({name for name, _, _ in calls(src)})


def chosen(seed: int, count: int, all_points: list[str] | None = None) -> list[str]:
    """A seeded subset of the points: one of each scenario first, then others at
    random, `count` in all (every point when `count` is larger)."""
    import random

    names = all_points if all_points is not None else points()
    rnd = random.Random(seed)
    by_scenario: dict[str, list[str]] = {}
    for name in names:
        by_scenario.setdefault(scenario_of(name) or "", []).append(name)
    picked = [rnd.choice(sorted(group)) for _, group in sorted(by_scenario.items())]
    rest = [n for n in names if n not in picked]
    rnd.shuffle(rest)
    picked += rest[: max(0, count - len(picked))]
    return sorted(picked)


def settings() -> tuple[int, int]:
    """(seed, count) from $PORTIQUE_FAULT_SEED (default: random) and
    $PORTIQUE_FAULT_COUNT (default 12; "all" for every point). Read once."""
    global _settings
    if _settings is None:
        import os
        import random

        seed_text = os.environ.get("PORTIQUE_FAULT_SEED", "")
        seed = int(seed_text) if seed_text.isdigit() else random.SystemRandom().randrange(1 << 31)
        count_text = os.environ.get("PORTIQUE_FAULT_COUNT", "12")
        count = 1 << 30 if count_text == "all" else int(count_text)
        _settings = (seed, count)
    return _settings


_settings: tuple[int, int] | None = None


__all__ = ["SCENARIOS", "calls", "chosen", "points", "scenario_of", "settings"]
