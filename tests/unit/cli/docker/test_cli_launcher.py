"""The `portique` launcher (portique.cli.docker.launcher): written, and it starts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import portique
from portique import __version__
from portique.cli.docker.launcher import ENTRY, launcher_text, main, site_entries, write_launcher


def test_text_starts_the_interpreter_without_site() -> None:
    text = launcher_text("/usr/bin/python3", ["/a/src", "/usr/lib/python3/dist-packages"])
    assert text.startswith("#!/usr/bin/python3 -S\n")
    assert "sys.path += ['/a/src', '/usr/lib/python3/dist-packages']\n" in text
    assert text.endswith(ENTRY)
    compile(text, "launcher", "exec")


@pytest.mark.parametrize("python", ["python3", "/opt/my python/bin/python3"])
def test_text_refuses_interpreters_a_shebang_cannot_name(python: str) -> None:
    with pytest.raises(ValueError, match="absolute path without spaces"):
        launcher_text(python, [])


def test_site_entries_are_what_site_adds() -> None:
    entries = site_entries(sys.executable)
    # portique itself is found through them (an editable install's src, or site-packages) ...
    assert any((Path(p) / "portique" / "__init__.py").is_file() for p in entries)
    # ... and the standard library is not among them: the bare interpreter has it.
    assert not any(p.endswith("lib-dynload") for p in entries)
    assert "" not in entries


def test_written_launcher_runs_without_site(tmp_path: Path) -> None:
    dest = tmp_path / "portique"
    write_launcher(str(dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["portique"]
    out = subprocess.run([dest, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == f"portique version {__version__}\n"
    # No site; the PYTHON* variables still count, as with pip's script (a
    # PYTHONPATH entry comes first, the baked paths after the standard library).
    probe = dest.read_text().replace(
        ENTRY,
        "print('site' in sys.modules, sys.flags.no_site, sys.flags.ignore_environment,"
        " sys.path.index(sys.argv[1]) < sys.path.index(sys.argv[2]))\n",
    )
    dest.write_text(probe)
    nowhere = str(tmp_path / "nowhere")
    env = {**os.environ, "PYTHONPATH": nowhere}
    portique_root = os.path.dirname(os.path.dirname(portique.__file__))
    out = subprocess.run(
        [dest, nowhere, portique_root], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["False", "1", "0", "True"]


def test_written_launcher_finds_the_dependencies(tmp_path: Path) -> None:
    # pull and load use zstandard, the network layer pyroute2, serve h11: all
    # installed beside portique, found without site.
    dest = tmp_path / "launcher"
    write_launcher(str(dest))
    dest.write_text(
        dest.read_text().replace(ENTRY, "import zstandard, pyroute2, h11\nprint('found')\n")
    )
    out = subprocess.run([dest], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "found\n"


def test_written_launcher_keeps_exit_codes_and_messages(tmp_path: Path) -> None:
    dest = tmp_path / "portique"
    write_launcher(str(dest))
    env = {**os.environ, "PORTIQUE_WARM": "off"}
    out = subprocess.run([dest, "--root"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 125
    assert out.stderr == "portique: flag needs an argument: --root\nSee 'portique --help'.\n"


def test_main_usage() -> None:
    assert main([]) == 2
    assert main(["-h"]) == 2
