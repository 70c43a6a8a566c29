"""`--change` instructions for `portique import`."""

from __future__ import annotations

import pytest

from portique.errors import InvalidArgument
from portique.image.importer import parse_changes


def test_cmd_and_entrypoint_exec_and_shell_forms() -> None:
    cfg = parse_changes(['CMD ["/bin/sh"]', "ENTRYPOINT echo hi"])
    assert cfg["Cmd"] == ["/bin/sh"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo hi"]


def test_env_forms_replace_existing_keys_in_place() -> None:
    # As Docker's ENV (and the Dockerfile builder's): a variable keeps its place.
    cfg = parse_changes(
        ["ENV A=1 B='two words'", "ENV C hello world", "env A=3"],
        base={"Env": ["PATH=/bin", "A=0"]},
    )
    assert cfg["Env"] == ["PATH=/bin", "A=3", "B=two words", "C=hello world"]


def test_changes_read_words_as_a_dockerfile_does() -> None:
    # The one reading of portique/words.py: quotes removed, the escape honoured.
    cfg = parse_changes(['ENV A "one  two"', r'LABEL "a b"=c\ d', "VOLUME '/x y' /z"])
    assert cfg["Env"] == ["A=one  two"]
    assert cfg["Labels"] == {"a b": "c d"}
    assert cfg["Volumes"] == {"/x y": {}, "/z": {}}


def test_label_expose_volume_user_workdir_stopsignal() -> None:
    cfg = parse_changes(
        [
            'LABEL a=b "c d"=e',
            "EXPOSE 80 53/udp",
            'VOLUME ["/data"]',
            "VOLUME /a /b",
            "USER nobody",
            "WORKDIR /srv",
            "STOPSIGNAL SIGINT",
        ]
    )
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/a": {}, "/b": {}}
    assert (cfg["User"], cfg["WorkingDir"], cfg["StopSignal"]) == ("nobody", "/srv", "SIGINT")


def test_base_is_not_modified() -> None:
    base = {"Env": ["A=1"]}
    parse_changes(["ENV B=2"], base=base)
    assert base == {"Env": ["A=1"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("RUN echo hi", "RUN is not one of"),
        ("FROM busybox", "FROM is not one of"),
        ("EXPOSE 99999", "bad port"),
        ("EXPOSE \u00b2", "bad port"),  # a digit to str.isdigit(), not to int()
        ("EXPOSE 80/icmp", "bad protocol"),
        ("LABEL novalue", "LABEL needs key=value pairs"),
        ("USER", "needs an argument"),
        ("ENV A='unterminated", "unterminated quote"),
    ],
)
def test_bad_changes_are_rejected(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_changes([change])
