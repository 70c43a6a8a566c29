from __future__ import annotations

from pathlib import Path

import pytest

from portique import __version__
from portique.cli.docker import main
from portique.engine.engine import Engine


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("portique version ")


def test_unknown_command_is_one_line_and_125(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["frobnicate"]) == 125
    err = capsys.readouterr().err
    assert "'frobnicate' is not a portique command" in err


def test_bad_flag_exits_125(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main.main(["version", "--no-such-flag"])
    assert exc.value.code == 125
    assert "unrecognized arguments" in capsys.readouterr().err


def test_database_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3
    import types

    def run(eng: object, args: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    module = types.SimpleNamespace(run=run)
    eng = Engine(Path("/nonexistent/root"), Path("/nonexistent/run"))
    assert main.run_command(module, eng, None, debug=False) == 125  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.startswith("portique: state database: database is locked")
    assert "(root /nonexistent/root)" in err
    assert err.count("\n") == 1


def test_verbs_that_start_containers_run_protected() -> None:
    # These re-execute from a sealed copy on an unprotected interpreter
    # (linux/selfexe.py); the others never pay for it.
    for argv in (
        ["run", "busybox"],
        ["exec", "c", "sh"],
        ["build", "."],
        ["container", "start", "c"],
    ):
        assert main.starts_containers(argv), argv
    for argv in ([], ["ps"], ["rm", "-f", "c"], ["container", "ls"], ["container"], ["images"]):
        assert not main.starts_containers(argv), argv


@pytest.mark.parametrize("argv", [["--root"], ["ps", "--root"][1:], ["--root="], ["--runroot"]])
def test_a_global_flag_without_its_value_says_so(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(argv) == 125
    err = capsys.readouterr().err
    flag = argv[0].rstrip("=")
    assert err.startswith(f"portique: flag needs an argument: {flag}\n")


@pytest.mark.parametrize(
    "argv", [["-H", "unix:///run/x.sock", "ps"], ["--host=tcp://1.2.3.4:2375", "ps"]]
)
def test_host_is_refused_until_there_is_a_server(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(argv) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "-H/--host" in err
    assert "no daemon" in err


def test_roots_come_from_flags_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTIQUE_ROOT", "/env/root")
    monkeypatch.setenv("PORTIQUE_RUNROOT", "/env/run")
    eng = main.make_engine({"--root": "/flag/root"})
    assert (eng.root, eng.runroot) == (Path("/flag/root"), Path("/env/run"))
    monkeypatch.delenv("PORTIQUE_ROOT")
    monkeypatch.delenv("PORTIQUE_RUNROOT")
    eng = main.make_engine({})
    assert (eng.root, eng.runroot) == (Path("/var/lib/portique"), Path("/run/portique"))


def test_exit_now_leaves_finalisation_to_the_interpreter_when_it_has_work() -> None:
    # An atexit callback or another thread: exit_now returns (and main's
    # caller exits as always); otherwise it ends the process with the code.
    import atexit
    import threading

    atexit.register(print)
    try:
        main.exit_now(3)  # returns
    finally:
        atexit.unregister(print)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        main.exit_now(3)  # returns
    finally:
        stop.set()
        t.join()


def test_entry_flushes_output_and_keeps_the_status() -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "portique"]
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (0, f"portique version {__version__}\n")
    bad = subprocess.run([*cmd, "--root"], capture_output=True, text=True, check=False)
    assert bad.returncode == 125
    assert bad.stderr == "portique: flag needs an argument: --root\nSee 'portique --help'.\n"
    # Help longer than a pipe's buffer: all of it arrives before the exit.
    helped = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0
    assert helped.stdout.endswith("\n")
    assert len(helped.stdout) > 1000


def test_exit_now_leaves_a_failed_flush_to_the_interpreter() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from portique.cli.docker.main import exit_now;"
        "sys.stdout.write('x'); exit_now(0); sys.stderr.write('returned\\n')"
    )
    import os

    cmd = [sys.executable, "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader went away before anything was written
        err = proc.stderr.read()
        status = proc.wait(timeout=30)
    # The buffered 'x' cannot be flushed: exit_now returns, and the interpreter
    # reports the broken pipe as it always did (status 120).
    assert err.startswith(b"returned\n")
    assert status == 120
