"""Docker-style output helpers: sizes, durations, tables and Go templates."""

from __future__ import annotations

import pytest

from portique.cli.docker.format import Record, format_rows, render_table
from portique.cli.docker.templates import TemplateError
from portique.units import human_duration, human_size, short_id, time_ago


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1240000, "1.24MB"),
        (4261550, "4.26MB"),
        (72_800_000, "72.8MB"),
        (123_456_789, "123MB"),
        (999_999, "1MB"),  # rounds up into the next unit, not "1e+03kB"
        (5 * 10**9, "5GB"),
    ],
)
def test_human_size_matches_go_units(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_size_precision_four_for_prune() -> None:
    assert human_size(1_234_567, 4) == "1.235MB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (125, "2 minutes"),
        (3600, "About an hour"),
        (7200, "2 hours"),
        (47 * 3600, "47 hours"),
        (3 * 86400, "3 days"),
        (15 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_time_ago() -> None:
    assert time_ago(1000.0, now=1000.0 + 7200) == "2 hours ago"
    assert time_ago(0) == "N/A"


def test_short_id() -> None:
    ident = "sha256:" + "ab" * 32
    assert short_id(ident) == "abababababab"
    assert short_id(ident, no_trunc=True) == ident


def test_render_table_pads_like_tabwriter() -> None:
    out = render_table([["REPOSITORY", "TAG", "IMAGE ID"], ["busybox", "latest", "abc"]])
    # minwidth 10, padding 3: "TAG" and "latest" both get a 10-column cell; no trailing blanks.
    assert out == "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    abc\n"


def test_format_rows_default_table_with_headers() -> None:
    rows = [Record(ID="abc", Repository="busybox", Tag="latest")]
    out = format_rows(
        None,
        rows,
        default="table {{.Repository}}\t{{.Tag}}\t{{.ID}}",
        headers={"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG"},
    )
    assert out.splitlines() == ["REPOSITORY   TAG       IMAGE ID", "busybox      latest    abc"]


def test_format_rows_custom_table_and_escaped_tab() -> None:
    rows = [Record(ID="abc", Repository="busybox")]
    out = format_rows(
        r"table {{.ID}}\t{{.Repository}}",
        rows,
        default="",
        headers={"ID": "IMAGE ID", "Repository": "REPOSITORY"},
    )
    assert out.splitlines() == ["IMAGE ID   REPOSITORY", "abc        busybox"]


def test_format_rows_plain_template_has_no_header() -> None:
    rows = [Record(ID="a", Tag="1"), Record(ID="b", Tag="2")]
    assert format_rows("{{.ID}}:{{.Tag}}", rows, default="", headers={}) == "a:1\nb:2\n"


def test_format_rows_json() -> None:
    rows = [Record(ID="a", Tag="1")]
    assert format_rows("json", rows, default="", headers={}) == '{"ID":"a","Tag":"1"}\n'
    assert format_rows("{{json .}}", rows, default="", headers={}) == '{"ID":"a","Tag":"1"}\n'


def test_unknown_field_of_a_row_is_an_error() -> None:
    # Go templates live in cli/gotemplate and are tested in tests/unit/cli
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type"):
        format_rows("{{.Nope}}", [Record(ID="a")], default="", headers={})


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (1023, "1023B"), (1024, "1KiB"), (1536 * 1024, "1.5MiB"), (3 * 1024**3, "3GiB")],
)
def test_binary_size_is_go_units_bytes_size(size: int, text: str) -> None:
    from portique.units import binary_size

    assert binary_size(size) == text
