"""scripts/structure.py: the layering and size check that .ci/run applies to src/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "structure.py"


def _structure() -> ModuleType:
    spec = importlib.util.spec_from_file_location("structure", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["structure"] = module
    spec.loader.exec_module(module)
    return module


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src" / "portique"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_downward_imports_pass(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "errors.py": "",
            "journal.py": "from portique import errors\nfrom portique.linux import ns\n",
            "linux/ns.py": "",
            "oci/runtime.py": "from portique.errors import X\nfrom portique.linux import ns\n",
            "engine/containers.py": "def f():\n    from portique.runtime import Runtime\n",
            "runtime/__init__.py": "from portique.oci import runtime\n",
            "cli/main.py": "import portique.engine.containers\n",
        },
    )
    assert _structure().check(src=src) == []


def test_upward_sideways_and_lazy_imports_are_reported(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "engine/present.py": "def f():\n    from portique.cli.docker import format\n",
            "cli/docker/format.py": "",
            "image/store.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from portique.runtime import Runtime\n",
            "runtime/__init__.py": "",
            "fileio.py": "import portique.oci.image\n",
            "oci/image.py": "",
        },
    )
    problems = _structure().check(src=src)
    assert len(problems) == 3, problems
    assert any("engine/present.py:2: engine (rank 5) imports cli (rank 7)" in p for p in problems)
    assert any("image/store.py:3: image (rank 3) imports runtime (rank 3)" in p for p in problems)
    assert any("fileio.py:1: base:fileio (rank 1) imports oci (rank 2)" in p for p in problems)


def test_long_modules_and_unknown_packages_are_reported(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"engine/big.py": "x = 1\n" * 701, "plugins/thing.py": ""})
    problems = _structure().check(src=src)
    assert any("engine/big.py: 701 lines, over 700" in p for p in problems)
    assert any("package 'plugins' has no rank" in p for p in problems)


def test_the_tree_itself_passes() -> None:
    assert _structure().check() == []
