"""A build context must not make `build` read host files outside it.

Whoever builds a repository they did not write (a CI service) runs `portique
build .` in it. The repository controls every name in the context, so its
`Dockerfile` can be a symlink to /etc/shadow: the builder read it and
printed its first line (root's password hash) in the parse error, to a build
log the repository's author reads. Docker never reads through such a link:
the classic builder refuses a Dockerfile outside the context, BuildKit
resolves it inside the Dockerfile's directory. `.dockerignore` is read the
same way (an outside file would decide what the build sees).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import engine, image_tar


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("ctx")
    with engine(base, f"pq-sec-ctx-{os.getpid()}") as p:
        p.ok("import", str(image_tar(base / "img")), "bb:latest")
        yield p


@pytest.fixture
def host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A root-only host file, as /etc/shadow is."""
    secret = f"root:$6$SECRET{secrets.token_hex(8)}:20000:0:99999:7:::"
    path = tmp_path / "host" / "shadow"
    path.parent.mkdir()
    path.write_text(secret + "\n")
    os.chmod(path, 0o600)
    return path, secret


@pytest.mark.parametrize("name", ["Dockerfile", "Containerfile"])
def test_a_dockerfile_symlinked_out_of_the_context_is_not_read(
    pq: Portique, tmp_path: Path, host_secret: tuple[Path, str], name: str
) -> None:
    shadow, secret = host_secret
    ctx = tmp_path / "repo"
    ctx.mkdir()
    (ctx / name).symlink_to(shadow)
    p = pq("build", "-q", str(ctx))
    assert secret.split("$")[2] not in p.stdout + p.stderr, "the build printed the host file"
    assert p.returncode != 0
    assert "Traceback" not in p.stderr


def test_a_dockerfile_symlink_inside_the_context_is_followed(pq: Portique, tmp_path: Path) -> None:
    ctx = tmp_path / "repo"
    (ctx / "docker").mkdir(parents=True)
    (ctx / "docker" / "real").write_text("FROM bb\nRUN echo inside > /inside\n")
    (ctx / "Dockerfile").symlink_to("docker/real")
    pq.ok("build", "-q", "-t", "inside", str(ctx))
    assert pq.ok("run", "--rm", "inside", "cat", "/inside") == "inside\n"


def test_a_dockerignore_symlinked_out_of_the_context_is_not_read(
    pq: Portique, tmp_path: Path
) -> None:
    outside = tmp_path / "outside-ignore"
    outside.write_text("kept.txt\n")
    ctx = tmp_path / "repo"
    ctx.mkdir()
    (ctx / "kept.txt").write_text("in the image\n")
    (ctx / ".dockerignore").symlink_to(outside)
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY . /ctx\n")
    pq.ok("build", "-q", "-t", "ignored", str(ctx))
    out = pq.ok("run", "--rm", "ignored", "cat", "/ctx/kept.txt")
    assert out == "in the image\n", "a file outside the context decided what the build saw"


@pytest.mark.parametrize("instruction", ["ADD", "COPY"])
def test_a_fifo_in_the_context_does_not_hang_the_build(
    pq: Portique, tmp_path: Path, instruction: str
) -> None:
    """ADD sniffs its source for a tar header: opening a FIFO to read it blocked
    the build forever (nobody writes to a repository's FIFO)."""
    import subprocess

    ctx = tmp_path / "repo"
    ctx.mkdir()
    os.mkfifo(ctx / "pipe")
    (ctx / "Dockerfile").write_text(f"FROM bb\n{instruction} pipe /pipe\n")
    try:
        p = pq("build", "-q", str(ctx), timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{instruction} of a FIFO hung the build")
    assert p.returncode != 0
    assert "not a regular file" in p.stderr
    assert "Traceback" not in p.stderr
