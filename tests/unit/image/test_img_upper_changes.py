"""A container's changes and a repeated lower layer, without a kernel: the
upper dir and the layers are plain directories here."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from portique.image.changes import ADDED, MODIFIED, changes
from portique.image.snapshots import has_changes, leads_to, lower_stack, write_diff_tar


def test_lower_stack_keeps_the_topmost_occurrence() -> None:
    a, b, c = Path("/s/1"), Path("/s/2"), Path("/s/3")
    assert lower_stack([a, b, a, c, b]) == [a, b, c]
    assert lower_stack([]) == []


def test_leads_to() -> None:
    assert leads_to(frozenset({"etc/hosts", "dev", "a/b/c"})) == {"etc", "a", "a/b"}


def _tree(root: Path, files: dict[str, str | None]) -> Path:
    for name, text in files.items():
        path = root / name
        if text is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


def test_changes_added_modified_and_copied_up_dirs(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower", {"etc/passwd": "root\n", "usr/bin": None, "tmp": None})
    upper = _tree(tmp_path / "upper", {"etc/passwd": "root\nx\n", "tmp/new": "n", "new/dir/f": "f"})
    # A directory copied up with its mode and mtime is not itself a change.
    (upper / "usr/bin").mkdir(parents=True)
    for d in ("usr", "usr/bin"):
        st = os.stat(lower / d)
        os.chmod(upper / d, st.st_mode & 0o7777)
        os.utime(upper / d, ns=(st.st_atime_ns, st.st_mtime_ns))
    got = changes(upper, [lower])
    assert ("/usr", MODIFIED) not in got
    assert ("/usr/bin", MODIFIED) not in got
    assert ("/etc/passwd", MODIFIED) in got
    assert ("/new", ADDED) in got
    assert ("/new/dir/f", ADDED) in got
    assert ("/tmp/new", ADDED) in got
    assert got.index(("/tmp/new", ADDED)) > [p for p, _ in got].index("/tmp")


def test_runtime_points_are_no_changes_nor_layer_content(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower", {"etc/passwd": "root\n"})
    upper = _tree(tmp_path / "upper", {"etc/hosts": "", "proc": None, "dev": None})
    skip = frozenset({"etc/hosts", "proc", "dev"})
    assert changes(upper, [lower], skip) == []
    assert not has_changes(upper, skip)
    buf = io.BytesIO()
    assert write_diff_tar(upper, buf, skip) == 0
    # Something written beside a mount point: the directory comes back with it.
    (upper / "etc/motd").write_text("hi\n")
    assert has_changes(upper, skip)
    buf = io.BytesIO()
    assert write_diff_tar(upper, buf, skip) == 2
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        assert [m.name for m in tar.getmembers()] == ["etc", "etc/motd"]
