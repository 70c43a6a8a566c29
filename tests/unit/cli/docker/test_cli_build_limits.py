"""`portique build`'s resource flags: the shortcut taken when none is given
returns what the flag parsers return for no flags."""

from __future__ import annotations

import argparse

from portique.cli.docker.commands import build


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    build.add_arguments(parser)
    return parser.parse_args([*argv, "ctx"])


def test_no_flags_gives_what_the_parsers_give() -> None:
    from portique.engine import options as opt

    assert build._limits(parse()) == {
        "add_hosts": [],
        "rlimits": [],
        "shm_size": 0,
        "memory": opt.parse_memory(None),
        "memory_swap": opt.parse_memory_swap(None, 0),
    }


def test_flags_are_parsed() -> None:
    limits = build._limits(
        parse("-m", "64m", "--ulimit", "nofile=10:20", "--add-host", "h:10.0.0.1")
    )
    assert limits["memory"] == 64 << 20
    assert limits["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]
    assert len(limits["add_hosts"]) == 1
