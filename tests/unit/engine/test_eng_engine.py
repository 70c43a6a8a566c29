"""The Engine object: where things live, lazy stores, no environment below the face."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portique.engine import db
from portique.engine.engine import Engine


def test_places_follow_the_roots_given(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "root", tmp_path / "run")
    p = eng.paths("c" * 64)
    assert p.dir == tmp_path / "root" / "containers" / ("c" * 64)
    assert p.run_dir == tmp_path / "run" / "containers" / ("c" * 64)
    assert p.runtime_root == eng.runtime_root == tmp_path / "run" / "runtime"
    assert eng.volumes_dir == tmp_path / "root" / "volumes"
    assert eng.containers_dir == tmp_path / "root" / "containers"


def test_building_an_engine_opens_nothing(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "root", tmp_path / "run")
    assert not (tmp_path / "root").exists()
    eng.close()
    assert not (tmp_path / "root").exists()
    conn = eng.db
    assert (tmp_path / "root" / "portique.db").exists()
    assert eng.db is conn  # opened once
    eng.close()


def test_environment_is_not_read_below_the_face(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTIQUE_ROOT", str(tmp_path / "env-root"))
    monkeypatch.setenv("PORTIQUE_RUNROOT", str(tmp_path / "env-run"))
    with Engine(tmp_path / "root", tmp_path / "run") as eng:
        db.list_containers(eng.db)
    assert (tmp_path / "root" / "portique.db").exists()
    assert not (tmp_path / "env-root").exists()


def test_no_module_under_the_faces_reads_the_root_from_the_environment() -> None:
    src = Path(str(__import__("portique").__file__)).parent
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src)
        if rel.parts[0] == "cli":
            continue  # the faces choose the roots
        text = path.read_text()
        # A lookup, in quotes; a docstring's mention is no reading.
        quoted = [f"{q}{name}{q}" for name in ("PORTIQUE_ROOT", "PORTIQUE_RUNROOT") for q in "\"'"]
        if any(lookup in text for lookup in quoted):
            offenders.append(str(rel))
    assert offenders == []


def test_a_forked_child_gets_its_own_connection(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "root", tmp_path / "run")
    parent = eng.db
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = eng.db is not parent and eng.db.execute("SELECT 1").fetchone()[0] == 1
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"1"
    assert eng.db is parent  # the parent's own is untouched
    parent.execute("SELECT 1")
    eng.close()


def test_the_monitor_imports_no_typing() -> None:
    # The long-lived monitor runs in a bare interpreter and keeps its imports few.
    code = "import sys; import portique.engine.monitor; print('typing' in sys.modules)"
    src = str(Path(str(__import__("portique").__file__)).parent.parent)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0]=[{src!r}]; {code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"
