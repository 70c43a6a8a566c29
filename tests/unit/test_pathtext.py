"""pathtext reads a path as PurePosixPath does."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from portique.pathtext import pure_parts, pure_text

CASES = [
    "/a/b",
    "/a/b/",
    "//a",
    "///a",
    "a/./b/",
    "",
    ".",
    "/",
    "//",
    "a//b/../c",
    "./x",
    "/sys/fs/cgroup/",
    "/run/portique-runtime/c1",
    "rel/dir",
    "/a/./../b",
]


@pytest.mark.parametrize("text", CASES)
def test_as_pure_posix_path(text: str) -> None:
    assert tuple(pure_parts(text)) == PurePosixPath(text).parts
    assert pure_text(text) == str(PurePosixPath(text))


def test_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        pure_text(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PurePosixPath(3)  # type: ignore[arg-type]
