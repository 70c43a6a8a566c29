"""The engine root is closed to other users when the database is opened (CVE-2021-41091)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from portique import db


def test_connect_makes_a_new_root_private(tmp_path: Path) -> None:
    root = tmp_path / "a" / "root"
    db.connect(root).close()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_connect_closes_a_root_an_older_version_left_open(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o755)
    (root / "volumes").mkdir()
    db.connect(root).close()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
