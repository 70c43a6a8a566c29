"""Docker's layer over Go templates (cli/docker/templates.py, format.py), with the
expectations of docker/cli's templates and formatter packages and of Go's
encoding/json and text/tabwriter."""

from __future__ import annotations

from typing import Any

import pytest

from portique.cli.docker import templates
from portique.cli.docker.format import format_rows
from portique.cli.docker.templates import TemplateError, tabwrite


def run(fmt: str, data: Any) -> str:
    return templates.execute(templates.parse(fmt), data)


# docker/cli templates_test.go: json, split/join, truncate, pad
@pytest.mark.parametrize(
    ("fmt", "data", "expected"),
    [
        ("{{json .Ports}}", {"Ports": "0.0.0.0:2->8/udp"}, '"0.0.0.0:2->8/udp"'),
        ("{{json .}}", {"foo": 42}, '{"foo":42}'),
        ('{{join (split . ":") "/"}}', "text:with:colon", "text/with/colon"),
        ("{{truncate . 5}}", "tupx5xzf6hvsrhnruz5cr8gwp", "tupx5"),
        ("{{truncate . 25}}", "tupx5xzf6hvsrhnruz5cr8gwp", "tupx5xzf6hvsrhnruz5cr8gwp"),
        ("{{truncate . 30}}", "tupx5xzf6hvsrhnruz5cr8gwp", "tupx5xzf6hvsrhnruz5cr8gwp"),
        ("{{pad . 3 3}}", "tupx5", "   tupx5   "),
        ("{{truncate . 5}}|{{pad . 3 3}}", "", "|"),
        ("{{title .}}", "hello wORLD-x_y", "Hello WORLD-X_y"),
        ("{{upper .}} {{lower .}}", "MiXed", "MIXED mixed"),
        ('{{split . ","}} {{len (split . ",")}}', "a,b,,c", "[a b  c] 4"),
        ('{{join . ", "}}', ["a", 1, True], "a, 1, true"),
        ('{{join . ","}}', {"b": "2", "a": "1"}, "1,2"),
        (
            "{{json .}}",
            {"b": [1, 2.5, None], "a": "<&>\u2028"},
            '{"a":"<&>\\u2028","b":[1,2.5,null]}',
        ),
        (
            "{{json .}}",
            [1e21, 1e20, 1e-7, 0.000001, 3.0, -0.0],
            "[1e+21,100000000000000000000,1e-07,0.000001,3,-0]",
        ),
        ("{{json .}}", "tab\tnl\nctl\x01", '"tab\\tnl\\nctl\\u0001"'),
        ("{{json .Missing}}", {}, "null"),
    ],
)
def test_docker_functions(fmt: str, data: Any, expected: str) -> None:
    assert run(fmt, data) == expected


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("{{truncate . 5}}", None, 'executing "" at <.>: invalid value; expected string'),
        ("{{upper 3}}", None, 'executing "" at <3>: expected string; found 3'),
        ("{{pad . 1}}", "x", "wrong number of args for pad: want 3 got 2"),
        ('{{join . ","}}', 3, "error calling join: expected slice, got int"),
        ("{{nosuch .}}", "x", 'template: :1: function "nosuch" not defined'),
    ],
)
def test_docker_function_errors(fmt: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        run(fmt, data)
    assert message in str(info.value)
    assert info.value.exit_code == 1


def test_tabwriter_column_blocks() -> None:
    # Go's tabwriter aligns a column only over consecutive lines that have it.
    text = "a\tbbbbbbbbbbbbbbb\tc\nddd\te\nno tabs here\nx\ty\n"
    assert tabwrite(text, minwidth=10, padding=3) == (
        "a         bbbbbbbbbbbbbbb   c\nddd       e\nno tabs here\nx         y\n"
    )
    assert tabwrite("Version:\t1\n Long key here:\t2\n", minwidth=20, padding=1) == (
        "Version:            1\n Long key here:     2\n"
    )


PS_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Labels": "LABELS"}
ROWS = [
    {"ID": "abc", "Names": "web", "Labels": "a=1,com.x.y=2"},
    {"ID": "def", "Names": "db", "Labels": ""},
]
LABELS = [{"a": "1", "com.x.y": "2"}, {}]


def ps(fmt: str) -> str:
    return format_rows(
        fmt,
        ROWS,
        default="table {{.ID}}\t{{.Names}}",
        headers=PS_HEADERS,
        context="*formatter.ContainerContext",
        labels=LABELS,
    )


def test_listing_table_header_and_label_method() -> None:
    # The header line runs on Docker's header map: Label gives the last dotted part,
    # and the string functions leave header text as it is.
    assert ps(r'table {{.ID}}\t{{upper .Names}}\t{{.Label "com.x.y"}}') == (
        "CONTAINER ID   NAMES     y\nabc            WEB       2\ndef            DB        \n"
    )
    assert ps("table") == "CONTAINER ID   NAMES\nabc            web\ndef            db\n"
    assert ps('{{.Names}}:{{.Label "a"}}:{{.Label "none"}}') == "web:1:\ndb::\n"


def test_listing_json_is_a_sorted_object_per_row() -> None:
    assert ps("json").splitlines()[0] == '{"ID":"abc","Labels":"a=1,com.x.y=2","Names":"web"}'
    assert ps("{{json .}}") == ps("json")


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (
            "{{.Nope}}",
            'template parsing error: template: :1:2: executing "" at <.Nope>: '
            "can't evaluate field Nope in type *formatter.ContainerContext",
        ),
        (
            '{{.ID "x"}}',
            'template parsing error: template: :1:2: executing "" at <.ID>: '
            "wrong number of args for ID: want 0 got 1",
        ),
        ("{{.Label}}", "wrong number of args for Label: want 1 got 0"),
        ("{{.ID", "template parsing error: template: :1: unclosed action"),
    ],
)
def test_listing_errors(fmt: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        ps(fmt)
    assert message in str(info.value)


CONTAINER = {
    "Id": "0123",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242, "Health": None},
    "Config": {"Labels": {"com.example": "1"}, "Env": ["A=1"], "Cmd": ["sh"]},
    "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}},
    "NetworkSettings": {
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
        "Networks": {"my-net": {"IPAddress": "10.89.0.2", "Aliases": ["web"]}},
    },
}


def inspect(fmt: str) -> str:
    tmpl = templates.parse(fmt, syntax_exit=64, prefix="template parsing error: ")
    return templates.inspect_one(tmpl, CONTAINER, "container.InspectResponse")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "8080"),
        ('{{(index .NetworkSettings.Networks "my-net").IPAddress}}', "10.89.0.2"),
        (
            "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{$e.IPAddress}}{{end}}",
            "my-net 10.89.0.2",
        ),
        # structs print their fields in order; a nil pointer prints <nil>
        ("{{.State}}", "{running true 4242 <nil>}"),
        ("{{.State.Health}}", "<nil>"),
        ("{{json .State}}", '{"Status":"running","Running":true,"Pid":4242,"Health":null}'),
        # maps: a missing key is <no value> in the typed pass
        ("{{.Config.Labels.nope}}", "<no value>"),
        ('{{index .Config.Labels "com.example"}}', "1"),
        ("{{.HostConfig.LogConfig.Config.max}}", "<no value>"),
        ("{{.Config.Env}} {{.Name}}", "[A=1] /web"),
    ],
)
def test_inspect_typed_pass(fmt: str, expected: str) -> None:
    assert inspect(fmt) == expected


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        # a missing struct field fails the typed pass; the raw pass (missingkey=error) reports it
        (
            "{{.Nope}}",
            'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"',
        ),
        (
            "{{.State.Nope}}",
            'template parsing error: template: :1:8: executing "" at <.State.Nope>: map has no entry for key "Nope"',
        ),
        (
            '{{(index .NetworkSettings.Networks "x").IPAddress}}',
            'nil data; no entry for key "IPAddress"',
        ),
    ],
)
def test_inspect_missing_field_is_an_error(fmt: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        inspect(fmt)
    assert str(info.value) == message or message in str(info.value)
    assert info.value.exit_code == 1


def test_inspect_syntax_error_exits_64() -> None:
    with pytest.raises(TemplateError) as info:
        inspect("{{.Name")
    assert str(info.value) == "template parsing error: template: :1: unclosed action"
    assert info.value.exit_code == 64
