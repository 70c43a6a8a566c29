"""The lean launcher script (portique.cli.runc.launcher): written, and it starts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portique import __version__
from portique.cli.runc.launcher import import_roots, launcher_text, main, write_launcher


def test_text_starts_the_interpreter_without_site() -> None:
    text = launcher_text("/usr/bin/python3", ["/a/src", "/usr/lib/python3/dist-packages"])
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    assert "sys.path += ['/a/src', '/usr/lib/python3/dist-packages']\n" in text
    assert text.endswith("entry()\n")
    compile(text, "launcher", "exec")


@pytest.mark.parametrize("python", ["python3", "/opt/my python/bin/python3"])
def test_text_refuses_interpreters_a_shebang_cannot_name(python: str) -> None:
    with pytest.raises(ValueError, match="absolute path without spaces"):
        launcher_text(python, [])


def test_roots_hold_portique_first() -> None:
    roots = import_roots()
    assert (Path(roots[0]) / "portique" / "__init__.py").is_file()


def test_written_launcher_runs_version_and_features(tmp_path: Path) -> None:
    dest = tmp_path / "portique-runtime"
    write_launcher(str(dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["portique-runtime"]
    # A PYTHONPATH pointing elsewhere is ignored (-I): the baked paths win.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "nowhere")}
    out = subprocess.run([dest, "--version"], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.splitlines()[0] == f"portique-runtime version {__version__}"
    # features imports libseccomp's binding: it must be found without site.
    feats = subprocess.run([dest, "features"], capture_output=True, text=True, check=True)
    seccomp_found = subprocess.run(
        [sys.executable, "-c", "import seccomp"], capture_output=True, check=False
    )
    expected = "true" if seccomp_found.returncode == 0 else "false"
    assert f'"enabled": {expected}' in feats.stdout.split('"seccomp"')[1].split("}")[0]


def test_written_launcher_imports_no_site(tmp_path: Path) -> None:
    dest = tmp_path / "launcher"
    write_launcher(str(dest))
    # Run its code with a probe in place of main(): what did start-up load?
    probe = dest.read_text().replace(
        "from portique.cli.runc.quick import entry\n\nentry()\n",
        "print('site' in sys.modules, sys.flags.isolated, sys.flags.no_site)\n",
    )
    dest.write_text(probe)
    out = subprocess.run([dest], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "1", "1"]


def test_main_usage() -> None:
    assert main([]) == 2
    assert main(["-h"]) == 2


def test_entry_flushes_output_and_keeps_the_exit_status(tmp_path: Path) -> None:
    # entry() skips the interpreter's finalisation: buffered output must
    # still arrive, and the status is main()'s.
    cmd = [sys.executable, "-m", "portique.cli.runc.main"]
    out = subprocess.run([*cmd, "spec", "--bundle", str(tmp_path), "--rootless"], check=False)
    assert out.returncode == 0
    assert (tmp_path / "config.json").stat().st_size > 100
    helped = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: portique-runtime")
    assert helped.stdout.endswith("print this help\n")
    bad = subprocess.run(
        [*cmd, "--root", str(tmp_path), "state", "nosuch"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr == "portique-runtime: container nosuch does not exist\n"


def test_entry_survives_a_closed_stdout() -> None:
    cmd = [sys.executable, "-m", "portique.cli.runc.main", "--help"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader went away before anything was written
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert b"Traceback" not in err


def test_written_launcher_finds_the_runtimes_dependencies(tmp_path: Path) -> None:
    # `portique-runtime explain` reads a container's network through pyroute2,
    # which lives in the virtualenv: without site, the launcher must name it.
    dest = tmp_path / "launcher"
    write_launcher(str(dest))
    probe = dest.read_text().replace(
        "from portique.cli.runc.quick import entry\n\nentry()\n",
        "import pyroute2, portique.network.netview\nprint(pyroute2.__name__)\n",
    )
    dest.write_text(probe)
    out = subprocess.run([dest], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pyroute2"]
