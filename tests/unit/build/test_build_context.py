from __future__ import annotations

import os
from pathlib import Path

import pytest

from portique.build.context import BuildContext
from portique.errors import InvalidArgument, NotFound


@pytest.fixture
def ctx_dir(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "src/pkg").mkdir(parents=True)
    (c / "src/a.py").write_text("a")
    (c / "src/pkg/b.py").write_text("b")
    (c / "src/.hidden").write_text("h")
    (c / "notes.log").write_text("log")
    (c / "Dockerfile").write_text("FROM scratch\n")
    (c / ".dockerignore").write_text("*.log\nsrc/pkg\n")
    (c / "link").symlink_to("src/a.py")
    (c / "escape").symlink_to("../outside")
    (tmp_path / "outside").write_text("secret")
    return c


def test_sources_and_globs(ctx_dir: Path) -> None:
    ctx = BuildContext.from_dir(ctx_dir)
    assert [s.rel for s in ctx.sources("src/*")] == ["src/.hidden", "src/a.py"]
    assert [s.rel for s in ctx.sources("/src/../src/a.py")] == ["src/a.py"]
    assert ctx.sources(".")[0].is_dir


def test_ignored_and_missing(ctx_dir: Path) -> None:
    ctx = BuildContext.from_dir(ctx_dir)
    with pytest.raises(NotFound):
        ctx.sources("notes.log")
    with pytest.raises(NotFound):
        ctx.sources("nothing-*")


@pytest.mark.parametrize("src", ["../outside", "escape", "src/../../outside"])
def test_escapes_are_refused(ctx_dir: Path, src: str) -> None:
    ctx = BuildContext.from_dir(ctx_dir)
    with pytest.raises(InvalidArgument, match="outside the build context"):
        ctx.sources(src)


def test_walk_leaves_out_ignored(ctx_dir: Path) -> None:
    ctx = BuildContext.from_dir(ctx_dir)
    rels = [rel for rel, _ in ctx.walk(ctx.sources(".")[0])]
    assert "src/pkg" not in rels
    assert "src/pkg/b.py" not in rels
    assert "notes.log" not in rels
    assert "src/a.py" in rels
    assert "link" in rels


def test_checksum_follows_content_not_mtime(ctx_dir: Path) -> None:
    ctx = BuildContext.from_dir(ctx_dir)
    before = ctx.checksum(ctx.sources("src"))
    os.utime(ctx_dir / "src/a.py", (1, 1))
    assert ctx.checksum(ctx.sources("src")) == before
    (ctx_dir / "src/a.py").write_text("changed")
    assert ctx.checksum(ctx.sources("src")) != before
    # An ignored file changing does not matter.
    (ctx_dir / "src/pkg/b.py").write_text("changed too")
    after = ctx.checksum(ctx.sources("src"))
    (ctx_dir / "src/pkg/b.py").write_text("again")
    assert ctx.checksum(ctx.sources("src")) == after
