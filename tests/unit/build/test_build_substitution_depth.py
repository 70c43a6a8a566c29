"""Variable substitution nested without end (found by tests/fuzz)."""

from __future__ import annotations

import pytest

from portique.build.dockerfile import MAX_SUBSTITUTION_DEPTH, expand
from portique.errors import InvalidArgument


def _nested(n: int) -> str:
    return "${U:-" * n + "x" + "}" * n


def test_deep_nesting_is_one_error_not_a_recursion_error() -> None:
    with pytest.raises(InvalidArgument, match="nested more than 32 deep"):
        expand(_nested(1000), {})


def test_reasonable_nesting_expands() -> None:
    assert expand(_nested(MAX_SUBSTITUTION_DEPTH), {}) == "x"
    assert expand("${A:-${B:+b}}", {"B": "1"}) == "b"


def test_the_error_line_is_short() -> None:
    with pytest.raises(InvalidArgument) as err:
        expand("${" + "x" * 10_000, {})
    assert len(err.value.message) < 300
    assert "\n" not in err.value.message
