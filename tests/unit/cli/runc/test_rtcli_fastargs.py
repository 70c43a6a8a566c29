"""The argparse-free parser of the hot verbs (cli/runc/fastargs.py) gives what
argparse gives, or steps aside (None) so that argparse parses or refuses."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from portique.cli.runc import fastargs
from portique.cli.runc import main as rtmain
from portique.cli.runc.fullparse import parser_for

HOT_VERBS = ("create", "start", "run", "state", "kill", "delete", "exec", "pause", "resume")


def full(verb: str, argv: list[str]) -> argparse.Namespace | str:
    """argparse's namespace, or its error message."""
    module = rtmain.load_verb(verb)
    assert module is not None
    try:
        return parser_for(verb, module).parse_args(argv)
    except fastargs.UsageError as e:
        return f"error: {e}"
    except SystemExit as e:  # --help
        return f"exit {e.code}"


def fast(verb: str, argv: list[str]) -> argparse.Namespace | None:
    module = rtmain.load_verb(verb)
    assert module is not None
    return fastargs.parse(argv, module.OPTIONS, module.POSITIONALS)


# Command lines the fast parser takes: its namespace must be argparse's.
TAKEN = [
    ("run", ["c1"]),
    ("run", ["-b", "/b", "c1"]),
    ("run", ["--bundle", "/b", "--detach", "c1"]),
    ("run", ["--bundle=/b", "-d", "--keep", "--no-subreaper", "c1"]),
    ("run", ["c1", "--bundle", "/b"]),
    ("run", ["--bundle=-odd", "c1"]),
    ("run", ["--bundle=", "c1"]),
    ("run", ["--bundle", "", "c1"]),
    ("run", ["--preserve-fds", "2", "--no-pivot", "--no-new-keyring", "c1"]),
    ("run", ["--preserve-fds=3", "--pid-file", "/p", "--console-socket", "/s", "c1"]),
    ("run", ["--preserve-fds", " 4", "c1"]),
    ("run", ["-b", "/a", "-b", "/b", "c1"]),
    ("create", ["--bundle", "/b", "--pid-file", "/run/x.pid", "c1"]),
    ("create", ["--console-socket", "/s.sock", "-b", "/b", "c-1.x_y+z"]),
    ("start", ["c1"]),
    ("state", ["c1"]),
    ("pause", ["c1"]),
    ("resume", ["c1"]),
    ("delete", ["c1"]),
    ("delete", ["--force", "c1"]),
    ("delete", ["-f", "c1"]),
    ("delete", ["c1", "-f"]),
    ("kill", ["c1"]),
    ("kill", ["c1", "KILL"]),
    ("kill", ["c1", "9"]),
    ("kill", ["--all", "c1", "SIGTERM"]),
    ("kill", ["-a", "c1"]),
    ("kill", ["c1", "KILL", "--all"]),
    ("exec", ["c1", "/bin/true"]),
    ("exec", ["c1"]),
    ("exec", ["--process", "/p.json", "c1"]),
    ("exec", ["-p", "-", "--detach", "c1"]),
    ("exec", ["-t", "c1", "sh", "-c", "echo hi"]),
    ("exec", ["c1", "-t", "sh"]),
    ("exec", ["c1", "sh", "--tty", "-e", "X"]),
    ("exec", ["-e", "A=1", "--env", "B=2", "--env=C=3", "c1", "env"]),
    ("exec", ["-u", "1000:1000", "-g", "5", "--additional-gids", "6", "c1", "id"]),
    ("exec", ["--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_ADMIN", "c1", "true"]),
    ("exec", ["--cwd", "/tmp", "--no-new-privs", "--preserve-fds", "1", "c1", "true"]),
    ("exec", ["--pid-file", "/p", "--console-socket", "/s", "--tty", "c1", "sh"]),
    ("exec", ["--apparmor", "x", "--process-label", "y", "--cgroup", "z", "c1", "true"]),
    ("exec", ["--ignore-paused", "c1", "true"]),
]

# Command lines it leaves to argparse (None), whatever argparse makes of them.
LEFT = [
    ("run", []),
    ("run", ["--help"]),
    ("run", ["-h"]),
    ("run", ["--bund", "/b", "c1"]),  # an abbreviation
    ("run", ["-dk", "c1"]),
    ("run", ["-b/b", "c1"]),
    ("run", ["-b=/b", "c1"]),
    ("run", ["--bundle", "-x", "c1"]),
    ("run", ["--bundle"]),
    ("run", ["--detach=true", "c1"]),
    ("run", ["--preserve-fds", "x", "c1"]),
    ("run", ["--preserve-fds=", "c1"]),
    ("run", ["--preserve-fds", "-1", "c1"]),
    ("run", ["--", "c1"]),
    ("run", ["-", "c1"]),
    ("run", ["-c1"]),
    ("run", ["c1", "c2"]),
    ("run", ["--bogus", "c1"]),
    ("state", []),
    ("state", ["a", "b"]),
    ("start", ["--force", "c1"]),
    ("pause", ["c1", "c2"]),
    ("resume", []),
    ("delete", ["--force=1", "c1"]),
    ("kill", []),
    ("kill", ["c1", "KILL", "extra"]),
    ("kill", ["c1", "--all", "KILL"]),  # argparse refuses a signal after an option
    ("kill", ["c1", "-9"]),
    ("exec", []),
    ("exec", ["c1", "--", "sh"]),
    ("exec", ["--", "c1", "sh"]),
    ("exec", ["c1", "sh", "--", "x"]),
    ("exec", ["-g", "x", "c1", "true"]),
    ("exec", ["--tty=1", "c1", "sh"]),
    ("exec", ["--user", "-1", "c1", "true"]),
    ("exec", ["-e", "c1"]),
]


@pytest.mark.parametrize(("verb", "argv"), TAKEN)
def test_fast_parse_equals_argparse(verb: str, argv: list[str]) -> None:
    got = fast(verb, argv)
    assert got is not None, "the fast path should take this command line"
    want = full(verb, argv)
    assert isinstance(want, argparse.Namespace), want
    assert vars(got) == vars(want)


@pytest.mark.parametrize(("verb", "argv"), LEFT)
def test_unusual_command_lines_fall_back(verb: str, argv: list[str]) -> None:
    assert fast(verb, argv) is None


def test_every_hot_verb_declares_its_command_line() -> None:
    for verb in HOT_VERBS:
        module = rtmain.load_verb(verb)
        assert module is not None
        assert module.OPTIONS is not None, verb
        assert module.POSITIONALS, verb


def test_defaults_are_fresh_lists() -> None:
    one = fast("exec", ["-e", "A=1", "c1", "true"])
    two = fast("exec", ["c1", "true"])
    assert one is not None
    assert two is not None
    assert one.env == ["A=1"]
    assert two.env == []


def test_main_without_argparse_for_the_hot_verbs() -> None:
    """A hot verb's usual command line runs without importing argparse; an
    error goes through argparse and keeps its words and status."""
    code = (
        "import sys\n"
        "from portique.cli.runc import main\n"
        "rc = main.main(['--root', sys.argv[1], 'state', 'nosuch'])\n"
        "print(rc, 'argparse' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "/nonexistent-root"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["1", "False"]
    assert "container nosuch does not exist" in out.stderr


def test_errors_keep_argparse_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["--root", "/nonexistent-root", "kill"]) == 1
    err = capsys.readouterr().err
    assert "portique-runtime kill: the following arguments are required: container-id" in err
    assert rtmain.main(["--root", "/nonexistent-root", "run", "--bund"]) == 1
    assert "expected one argument" in capsys.readouterr().err
