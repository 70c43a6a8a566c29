"""The CLI's loop over named objects and its one wording of a missing one (cli/docker/each.py)."""

from __future__ import annotations

import pytest

from portique.cli.docker.each import Missing, collect, for_each
from portique.errors import Conflict, NoSuchObject


def act(ref: str) -> str:
    if ref.startswith("gone"):
        raise NoSuchObject("container", ref)
    if ref == "busy":
        raise Conflict("container busy is running")
    return ref.upper()


def test_success_prints_the_name_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert for_each(["a", "b"], act) == 0
    assert capsys.readouterr().out == "a\nb\n"


def test_a_missing_one_is_dockers_sentence_and_the_loop_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert for_each(["gone1", "a", "gone2"], act) == 1
    out, err = capsys.readouterr()
    assert out == "a\n"
    assert err == "Error: No such container: gone1\nError: No such container: gone2\n"


def test_missing_can_be_skipped_or_only_said(capsys: pytest.CaptureFixture[str]) -> None:
    assert for_each(["gone"], act, missing=Missing.SKIP) == 0
    assert capsys.readouterr().err == ""
    assert for_each(["gone"], act, missing=Missing.WARN) == 0
    assert capsys.readouterr().err == "Error: No such container: gone\n"


def test_other_errors_are_one_line_with_status_1_or_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert for_each(["busy", "a"], act) == 1
    assert capsys.readouterr().err == "portique: container busy is running\n"
    assert for_each(["busy"], act, keep_exit_code=True) == 125


def test_show_gets_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert for_each(["a"], act, show=lambda ref, got: print(f"{ref}={got}")) == 0
    assert capsys.readouterr().out == "a=A\n"


def test_collect_keeps_what_was_found_and_what_was_missing() -> None:
    found, missing = collect(["a", "gone", "b"], act)
    assert found == ["A", "B"]
    assert [(m.kind, m.ref) for m in missing] == [("container", "gone")]


def test_a_missing_name_with_a_newline_stays_one_line() -> None:
    exc = NoSuchObject("image", "bad\nname")
    assert exc.docker_text() == "No such image: bad\\nname"
    assert str(exc) == "no such image: bad\\nname"
