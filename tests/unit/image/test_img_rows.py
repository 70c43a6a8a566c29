"""`images` rows and `image inspect` documents built from image records (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portique.cli.docker.commands.image import image_rows
from portique.cli.docker.filters import from_flags
from portique.engine import filters as flt
from portique.engine.images import created_timestamp, inspect_record, parse_until, summary
from portique.errors import InvalidArgument
from portique.image.images import ImageRecord

ID = "sha256:" + "a" * 64
DIGEST = "sha256:" + "d" * 64


def record(
    tags: list[str], digests: list[str], config: dict[str, Any] | None = None
) -> ImageRecord:
    return ImageRecord(
        id=ID,
        repo_tags=tags,
        repo_digests=digests,
        manifest_digest=DIGEST,
        config=config
        or {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-02T03:04:05.123456789Z",
            "config": {"Cmd": ["/bin/sh"], "ExposedPorts": {"80/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        },
        created="2024-01-02T03:04:05.123456789Z",
        size=4_261_550,
        layers=["sha256:" + "1" * 64],
        chain_ids=["sha256:" + "1" * 64],
        snapshot_dirs=[Path("/nonexistent")],
        architecture="amd64",
        os="linux",
    )


def test_created_timestamp_accepts_go_nanoseconds() -> None:
    assert created_timestamp("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456)
    assert created_timestamp("") == 0.0
    assert created_timestamp("garbage") == 0.0
    assert created_timestamp(12.5) == 12.5


def test_rows_per_tag_with_matching_digest() -> None:
    rows = image_rows(
        [summary(record(["busybox:latest", "busybox:1", "other:x"], [f"busybox@{DIGEST}"]))]
    )
    got = [(r["Repository"], r["Tag"], r["Digest"], r["ID"], r["Size"]) for r in rows]
    assert got == [
        ("busybox", "latest", DIGEST, "a" * 12, "4.26MB"),
        ("busybox", "1", DIGEST, "a" * 12, "4.26MB"),
        ("other", "x", "<none>", "a" * 12, "4.26MB"),
    ]


def test_untagged_rows() -> None:
    (row,) = image_rows([summary(record([], []))])
    assert (row["Repository"], row["Tag"], row["Digest"]) == ("<none>", "<none>", "<none>")
    (row,) = image_rows([summary(record([], [f"busybox@{DIGEST}"]))], no_trunc=True)
    assert (row["Repository"], row["Tag"], row["Digest"]) == ("busybox", "<none>", DIGEST)
    assert row["ID"] == ID


def test_reference_filter_limits_the_tags_shown() -> None:
    shown = summary(record(["busybox:latest", "other:x"], []), ["busybox"])
    assert shown["RepoTags"] == ["busybox:latest"]
    rows = image_rows([shown], ["busybox"])
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("busybox", "latest")]


def test_inspect_shape_matches_docker() -> None:
    doc = inspect_record(record(["busybox:latest"], [f"busybox@{DIGEST}"]))
    assert list(doc) == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
    ]
    assert doc["Id"] == ID
    assert doc["RepoDigests"] == [f"busybox@{DIGEST}"]
    assert doc["Created"] == "2024-01-02T03:04:05.123456789Z"
    assert doc["Config"]["Cmd"] == ["/bin/sh"]
    assert doc["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert doc["Config"]["Entrypoint"] is None
    assert doc["RootFS"] == {"Type": "layers", "Layers": ["sha256:" + "1" * 64]}


def test_filter_flags_become_dockers_map_and_the_engine_checks_the_keys() -> None:
    filters = from_flags(["dangling=true", "label=a=b", "LABEL=c"])
    assert filters == {"dangling": ["true"], "label": ["a=b", "c"]}
    assert flt.check(filters, ("dangling", "label")) == filters
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        flt.check(from_flags(["nope=1"]), ("dangling",))
    with pytest.raises(InvalidArgument, match="expected name=value"):
        from_flags(["dangling"])
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        flt.flag("dangling", "maybe")
    assert flt.labels_match({"a": "b", "c": ""}, ["a=b", "c"])
    assert not flt.labels_match({"a": "b"}, ["a=b", "c"])  # every label value must match


@pytest.mark.parametrize(
    ("value", "cutoff"),
    [
        ("24h", 1_000_000.0 - 86400),
        ("1h30m", 1_000_000.0 - 5400),
        ("90s", 1_000_000.0 - 90),
        ("12345", 12345.0),
        ("2024-01-02T03:04:05Z", 1704164645.0),
        ("2024-01-02", 1704153600.0),
    ],
)
def test_parse_until(value: str, cutoff: float) -> None:
    assert parse_until(value, now=1_000_000.0) == pytest.approx(cutoff)


@pytest.mark.parametrize("bad", ["yesterday", "10x", "h"])
def test_parse_until_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="until"):
        parse_until(bad)
