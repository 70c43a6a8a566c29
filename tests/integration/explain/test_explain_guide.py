"""The guide (docs/guide/en.md and fr.md): its commands, run again now, print
what the guide shows, modulo ids, numbers, addresses and times."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]


def _guide() -> ModuleType:
    spec = importlib.util.spec_from_file_location("portique_guide", REPO / "docs/guide/guide.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_both_languages_show_the_same_commands_and_outputs() -> None:
    g = _guide()
    en, fr = (g.parse(p.read_text()) for p in g.GUIDES)
    assert [(s.command, s.output) for s in en] == [(s.command, s.output) for s in fr]
    assert len(en) > 20
    assert all(s.output for s in en if s.command.startswith("portique explain"))


def test_the_guide_still_tells_the_truth(tmp_path: Path) -> None:
    g = _guide()
    steps, outputs = g.run_guide(tmp_path)
    changed = [
        f"$ {s.command}\n--- guide\n{g.normalise(s.output)}--- now\n{g.normalise(now)}"
        for s, now in zip(steps, outputs, strict=True)
        if g.normalise(s.output) != g.normalise(now)
    ]
    assert not changed, "\n".join(changed) + "\n(if the change is right: docs/guide/guide.py)"
