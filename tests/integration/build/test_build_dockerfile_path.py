"""`build -f PATH` resolves PATH as Docker does (issue 9, item 7): from the
current directory, not from the context; a Dockerfile outside the context
is allowed; with a context from stdin, -f names a file of that context."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

Portique = Callable[..., subprocess.CompletedProcess[str]]


def _build(
    env: dict[str, str], cwd: Path, *args: str, stdin: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    with open(stdin or "/dev/null", "rb") as f:  # a file: a stdin context is seeked
        return subprocess.run(
            [sys.executable, "-m", "portique", "build", *args],
            env=env, cwd=cwd, capture_output=True, stdin=f, timeout=300, check=False,
        )  # fmt: skip


def _which(portique: Portique, image: str) -> str:
    return portique("run", "--rm", image, "cat", "/which").stdout.strip()


def test_relative_dockerfile_is_found_from_the_current_directory(
    portique: Portique, engine: dict[str, str], tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub/Dockerfile.x").write_text("FROM busybox\nRUN echo context > /which\n")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub/Dockerfile.x").write_text("FROM busybox\nRUN echo cwd > /which\n")
    r = _build(engine, work, "-q", "-t", "dfpath:cwd", "-f", "sub/Dockerfile.x", str(ctx))
    assert r.returncode == 0, r.stderr
    assert _which(portique, "dfpath:cwd") == "cwd"
    # The usual spelling, a Dockerfile inside the context named from above it.
    r = _build(engine, tmp_path, "-q", "-t", "dfpath:ctx", "-f", "ctx/sub/Dockerfile.x", "ctx")
    assert r.returncode == 0, r.stderr
    assert _which(portique, "dfpath:ctx") == "context"


def test_missing_dockerfile_fails_in_one_line(engine: dict[str, str], tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.x").write_text("FROM busybox\n")
    # Only in the context: relative to the current directory it does not exist.
    r = _build(engine, tmp_path, "-f", "Dockerfile.x", str(ctx))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err == (
        f"portique: unable to prepare context: cannot read Dockerfile {tmp_path}/Dockerfile.x:"
        " no such file\n"
    )


def test_stdin_context_dockerfile_names_a_context_file(
    portique: Portique, engine: dict[str, str], tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.in").write_text("FROM busybox\nRUN echo stdin > /which\n")
    tar = tmp_path / "ctx.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(ctx / "Dockerfile.in", arcname="Dockerfile.in")
    r = _build(
        engine,
        tmp_path,
        "-q",
        "-t",
        "dfpath:stdin",
        "-f",
        "Dockerfile.in",
        "-",
        stdin=tar,
    )
    assert r.returncode == 0, r.stderr
    assert _which(portique, "dfpath:stdin") == "stdin"
