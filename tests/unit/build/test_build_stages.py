from __future__ import annotations

import pytest

from portique.build.dockerfile import DockerfileError, parse
from portique.build.stages import plan
from portique.errors import InvalidArgument

MULTI = """
ARG BASE=busybox
ARG VERSION
FROM ${BASE}:${VERSION:-latest} AS deps
RUN echo deps
FROM busybox AS unused
RUN echo never
FROM deps AS builder
RUN echo build
FROM scratch
COPY --from=builder /out /out
"""


def test_stages_and_global_args() -> None:
    p = plan(parse(MULTI), build_args={"VERSION": "1.36"})
    assert [s.name for s in p.stages] == ["deps", "unused", "builder", None]
    assert p.stages[0].base == "busybox:1.36"
    assert p.global_args == {"BASE": "busybox", "VERSION": None}
    assert p.target == 3
    # `unused` is reached by neither FROM nor COPY --from.
    assert p.needed == frozenset({0, 2, 3})


def test_target_stops_early() -> None:
    p = plan(parse(MULTI), build_args={}, target="deps")
    assert p.target == 0
    assert p.needed == frozenset({0})
    assert p.stages[0].base == "busybox:latest"


def test_unknown_target() -> None:
    with pytest.raises(InvalidArgument, match="target stage 'nope' could not be found"):
        plan(parse(MULTI), build_args={}, target="nope")


def test_copy_from_by_index() -> None:
    p = plan(parse("FROM a\nFROM b\nCOPY --from=0 /x /x\n"), build_args={})
    assert p.needed == frozenset({0, 1})


def test_instruction_before_from() -> None:
    with pytest.raises(DockerfileError, match="RUN before the first FROM"):
        plan(parse("RUN x\nFROM a\n"), build_args={})


def test_no_from() -> None:
    with pytest.raises(DockerfileError, match="no FROM instruction"):
        plan(parse("ARG A\n"), build_args={})
