"""portique/words.py: the one reading of words and KEY=VALUE pairs, shared by the
Dockerfile builder and `import --change`."""

from __future__ import annotations

import pytest

from portique.build.dockerfile import DockerfileError
from portique.build.dockerfile import parse_key_values as dockerfile_pairs
from portique.errors import InvalidArgument
from portique.image.importer import parse_changes
from portique.words import parse_key_values, set_env, split_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a  b\tc", ["a", "b", "c"]),
        ("'x y' \"z w\"", ["x y", "z w"]),
        ("'a\\b' \"a\\b\" a\\ b", ["a\\b", "ab", "a b"]),
        ('""', [""]),
        ("", []),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_split_words_with_the_dockerfiles_escape() -> None:
    assert split_words("a` b c\\d", escape="`") == ["a b", "c\\d"]


@pytest.mark.parametrize(
    ("text", "cmd", "pairs"),
    [
        ('A=1 B="two words" C=', "ENV", [("A", "1"), ("B", "two words"), ("C", "")]),
        ("KEY some  value", "ENV", [("KEY", "some value")]),
        ('KEY "quoted  value"', "ENV", [("KEY", "quoted  value")]),
        ("KEY", "ENV", [("KEY", "")]),
        ('"a b"=c d=', "LABEL", [("a b", "c"), ("d", "")]),
    ],
)
def test_pairs(text: str, cmd: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_key_values(text, cmd, where="w") == pairs


@pytest.mark.parametrize(
    ("text", "cmd", "message"),
    [
        ("", "ENV", "w: ENV requires at least one argument"),
        ("KEY value", "LABEL", "w: LABEL needs key=value pairs"),
        ("A=1 B", "ENV", "w: ENV names must be key=value, got 'B'"),
        ("A=1 =2", "LABEL", "w: LABEL names must be key=value, got '=2'"),
        ("A='open", "ENV", 'w: unterminated quote in "A=\'open"'),
        ("'K x' \"v", "ENV", "w: unterminated quote"),
    ],
)
def test_errors_start_with_where(text: str, cmd: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_key_values(text, cmd, where="w")
    assert info.value.message.startswith(message)


def test_both_callers_read_the_same_pairs() -> None:
    text = 'A=1 "B C"="d e" F'
    with pytest.raises(DockerfileError, match="Dockerfile:3: ENV names must be key=value"):
        dockerfile_pairs(text, "ENV", where="Dockerfile:3")
    with pytest.raises(InvalidArgument, match=r"invalid change .*: ENV names must be key=value"):
        parse_changes([f"ENV {text}"])
    good = 'A=1 "B C"="d e"'
    assert parse_changes([f"LABEL {good}"])["Labels"] == dict(
        dockerfile_pairs(good, "LABEL", where="Dockerfile:3")
    )


def test_set_env_keeps_places() -> None:
    env = ["PATH=/bin", "A=0", "B=1"]
    assert set_env(env, [("A", "2"), ("C", "3"), ("PATH", "/usr/bin")]) == [
        "PATH=/usr/bin",
        "A=2",
        "B=1",
        "C=3",
    ]
    assert env == ["PATH=/bin", "A=0", "B=1"]
