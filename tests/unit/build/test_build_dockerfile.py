from __future__ import annotations

import pytest

from portique.build.dockerfile import (
    DockerfileError,
    expand,
    parse,
    parse_key_values,
)
from portique.words import split_words


def test_instructions_continuations_and_comments() -> None:
    df = parse(
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox AS base\n"
        "# a comment\n"
        "RUN echo one \\\n"
        "  # comment inside a continuation\n"
        "  && echo two\n"
        "\n"
        'CMD ["sh", "-c", "echo hi"]\n'
    )
    assert df.directives == {"syntax": "docker/dockerfile:1"}
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN", "CMD"]
    run = df.instructions[1]
    assert run.line == 4
    assert run.rest == "echo one   && echo two"
    assert df.instructions[2].exec_form == ("sh", "-c", "echo hi")


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM scratch\nRUN dir `\n  c:\\\n")
    assert df.escape == "`"
    assert df.instructions[1].rest == "dir   c:\\"


def test_unknown_instruction_names_file_and_line() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile\.dev:3: unknown instruction: FORM$"):
        parse("FROM a\n\nFORM b\n", filename="Dockerfile.dev")


def test_flags_parsed_and_unknown_flag_refused() -> None:
    df = parse("FROM --platform=linux/amd64 a\nCOPY --from=a --chown=1:2 --chmod=755 x y /d/\n")
    copy = df.instructions[1]
    assert copy.flag("from") == "a"
    assert copy.flag("chown") == "1:2"
    assert copy.flag("chmod") == "755"
    assert copy.rest == "x y /d/"
    with pytest.raises(DockerfileError, match="unknown flag --nope for COPY"):
        parse("FROM a\nCOPY --nope=1 a b\n")


def test_heredocs() -> None:
    df = parse(
        'FROM a\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<-"END" /etc/conf\n\tkey=$value\nEND\nRUN true\n'
    )
    run, copy = df.instructions[1], df.instructions[2]
    assert run.heredocs[0].content == "echo $HOME\n"
    assert run.heredocs[0].expand is True
    assert copy.heredocs[0].content == "key=$value\n"
    assert copy.heredocs[0].expand is False
    assert df.instructions[3].rest == "true"


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError, match="heredoc <<EOF is not terminated"):
        parse("FROM a\nRUN <<EOF\necho\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM\n", "FROM requires at least one argument"),
        ("FROM a b\n", "FROM needs"),
        ("FROM a\nCOPY onlyone\n", "COPY requires at least two arguments"),
        ("FROM a\nWORKDIR a b\n", "WORKDIR requires exactly one argument"),
        ("FROM a\nSHELL sh -c\n", "SHELL requires the arguments in JSON form"),
        ("FROM a\nHEALTHCHECK --interval=5s echo\n", "HEALTHCHECK must be"),
        ("FROM a\nONBUILD FROM b\n", "ONBUILD FROM is not allowed"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        parse(text)


def test_invalid_json_falls_back_to_shell_form() -> None:
    df = parse('FROM a\nCMD ["unterminated\n')
    assert df.instructions[1].exec_form is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "1"),
        ("${A}b", "1b"),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${A:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("\\$A", "$A"),
        ("'$A'", "'$A'"),
        ("${UNSET:-${A}x}", "1x"),
        ("a$", "a$"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "EMPTY": ""}) == expected


def test_expand_required() -> None:
    with pytest.raises(Exception, match="V: must be set"):
        expand("${V:?must be set}", {})


def test_split_words_and_key_values() -> None:
    assert split_words("a \"b c\" 'd\\e' f\\ g") == ["a", "b c", "d\\e", "f g"]
    assert parse_key_values('A=1 B="two words" C=', "ENV", where="x") == [
        ("A", "1"),
        ("B", "two words"),
        ("C", ""),
    ]
    assert parse_key_values("KEY some value", "ENV", where="x") == [("KEY", "some value")]
    with pytest.raises(DockerfileError, match="LABEL needs key=value"):
        parse_key_values("KEY value", "LABEL", where="x")
