"""build/copy.py's owner lookup (`COPY --chown`, `USER`) in the image's own /etc files,
which are as hostile as the rest of the image."""

from __future__ import annotations

from pathlib import Path

import pytest

from portique.build.copy import Owner, resolve_owner
from portique.errors import NotFound


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nstaff:x:50:\n")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "owner"),
    [
        ("app", Owner(1000, 1001)),
        ("app:staff", Owner(1000, 50)),
        ("7", Owner(7, 7)),
        ("7:8", Owner(7, 8)),
    ],
)
def test_names_and_numbers(rootfs: Path, spec: str, owner: Owner) -> None:
    assert resolve_owner(spec, rootfs) == owner


def test_unicode_digits_are_names_not_numbers(rootfs: Path) -> None:
    # "²".isdigit() is True but int("²") raises: the lookup must say "not found".
    with pytest.raises(NotFound, match="unable to find user ²"):
        resolve_owner("²", rootfs)
    (rootfs / "etc" / "passwd").write_text("odd:x:\u00b2:\u00b3::/:/bin/sh\n")
    with pytest.raises(NotFound, match="unable to find user odd"):
        resolve_owner("odd", rootfs)
