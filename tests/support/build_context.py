"""A build context that exercises COPY, ADD and .dockerignore, for the build tests."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path


def make_context(tmp: Path, dockerfile: str) -> Path:
    """tmp/ctx with files/ (a.txt 0640, sub/b.txt), script.sh, data.tar.gz
    (data/kept.txt, data/remove-me.txt), and secret.key and ignored.log that
    .dockerignore leaves out."""
    ctx = tmp / "ctx"
    (ctx / "files/sub").mkdir(parents=True)
    (ctx / "files/a.txt").write_text("A\n")
    (ctx / "files/sub/b.txt").write_text("B\n")
    os.chmod(ctx / "files/a.txt", 0o640)
    (ctx / "script.sh").write_text("#!/bin/sh\necho script\n")
    (ctx / "secret.key").write_text("do not copy\n")
    (ctx / "ignored.log").write_text("not copied\n")
    (ctx / ".dockerignore").write_text("*.key\n*.log\n")
    data = tmp / "data"
    (data / "data").mkdir(parents=True)
    (data / "data/kept.txt").write_text("kept\n")
    (data / "data/remove-me.txt").write_text("gone\n")
    with tarfile.open(ctx / "data.tar.gz", "w:gz") as tf:
        tf.add(data / "data", arcname="data")
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx
