from __future__ import annotations

import pytest

from portique.cli.docker import main


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

    def run(args: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    module = types.SimpleNamespace(run=run)
    assert main.run_command(module, None, debug=False) == 125  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.startswith("portique: state database: database is locked")
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
