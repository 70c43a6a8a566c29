"""warm/preload.py names modules that exist: a renamed module would otherwise be
found only by the warm pass's import test, as a failed server start."""

from __future__ import annotations

import importlib.util

from portique.warm.preload import START_PATH


def test_every_start_path_module_exists() -> None:
    missing = [name for name in START_PATH if importlib.util.find_spec(name) is None]
    assert missing == []


def test_no_module_is_listed_twice() -> None:
    assert len(set(START_PATH)) == len(START_PATH)
