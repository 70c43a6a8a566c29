"""The CLI's argparse: help as argparse formats it, without asking the terminal per flag."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from portique.cli.docker.argparser import ArgumentParser, HelpFormatter


def _build(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "-e", "--env", action="append", default=[], help="set an environment variable " * 4
    )
    parser.add_argument("--memory-swap", metavar="BYTES", help="total memory (memory + swap)")
    parser.add_argument("image")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


@pytest.mark.parametrize("columns", ["", "40", "100", "300"])
def test_help_and_usage_are_argparses(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    ours = _build(ArgumentParser(prog="portique run"))
    theirs = _build(argparse.ArgumentParser(prog="portique run"))
    assert ours.format_help() == theirs.format_help()
    assert ours.format_usage() == theirs.format_usage()


def test_an_explicit_width_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    parser = _build(
        ArgumentParser(
            prog="portique run", formatter_class=lambda prog: HelpFormatter(prog, width=50)
        )
    )
    assert max(len(line) for line in parser.format_help().splitlines()) <= 50


def test_building_the_run_parser_loads_no_shutil() -> None:
    import os

    import portique

    code = (
        "import sys; sys.path.append(sys.argv[1]);"
        "from portique.cli.docker.argparser import ArgumentParser;"
        "from portique.cli.docker.commands import run;"
        "p = ArgumentParser(prog='portique run'); run.add_arguments(p);"
        "p.parse_args(['--rm', 'busybox', 'true']); print('shutil' in sys.modules)"
    )
    root = os.path.dirname(os.path.dirname(portique.__file__))
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, root], capture_output=True, text=True, check=False
    )
    assert out.stdout == "False\n", out.stderr
