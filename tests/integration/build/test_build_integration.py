"""`portique build` end to end: real RUN steps through the runtime, real layers."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.build_context import make_context

Portique = Callable[..., subprocess.CompletedProcess[str]]

EVERYTHING = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS base
ARG GREETING=hello
ENV APP_HOME=/app GREETING_COPY=${GREETING}
LABEL org.example.name="demo app" version=1
WORKDIR $APP_HOME
COPY --chmod=750 --chown=1:1 files/ ./files/
ADD data.tar.gz /opt/
RUN echo "$GREETING from RUN" > /app/greeting.txt && mkdir -p /app/empty
RUN ["/bin/sh", "-c", "echo exec-form > /app/exec.txt"]
RUN <<EOF
echo heredoc-line-1 > /app/heredoc.txt
echo heredoc-line-2 >> /app/heredoc.txt
EOF
COPY <<EOF /app/inline.conf
key=value
EOF
SHELL ["/bin/sh", "-ec"]
RUN rm /opt/data/remove-me.txt
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
USER daemon
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/greeting.txt"]
"""


def _simple(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name, text in files.items():
        (ctx / name).write_text(text)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _inspect(portique: Portique, ref: str) -> Any:
    return json.loads(portique("image", "inspect", ref).stdout)[0]


def _run_in(portique: Portique, image: str, *cmd: str) -> str:
    out: str = portique("run", "--rm", "--entrypoint", "", image, *cmd).stdout
    return out


def test_every_instruction(portique: Portique, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, EVERYTHING)
    out = portique("build", "-t", "demo:1", "--build-arg", "GREETING=hi", str(ctx)).stdout
    assert "Successfully tagged" in out
    info = _inspect(portique, "demo:1")
    cfg = info["Config"]
    assert "APP_HOME=/app" in cfg["Env"]
    assert "GREETING_COPY=hi" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.name": "demo app", "version": "1"}
    assert cfg["WorkingDir"] == "/app"
    assert cfg["User"] == "daemon"
    assert set(cfg["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert set(cfg["Volumes"]) == {"/data"}
    assert cfg["StopSignal"] == "SIGTERM"
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["Cmd"] == ["cat /app/greeting.txt"]
    # Each RUN, COPY and ADD made a layer on top of busybox's one.
    assert len(info["RootFS"]["Layers"]) == 1 + 7

    files = _run_in(
        portique,
        "demo:1",
        "/bin/sh",
        "-c",
        "cat /app/greeting.txt /app/exec.txt /app/heredoc.txt /app/inline.conf "
        "/app/files/a.txt /app/files/sub/b.txt /opt/data/kept.txt; "
        "ls /opt/data; ls /app/files; stat -c '%a %u:%g' /app/files/a.txt",
    )
    assert "hi from RUN" in files
    assert "exec-form" in files
    assert "heredoc-line-1\nheredoc-line-2" in files
    assert "key=value" in files
    assert "A\nB\nkept\n" in files
    assert "remove-me.txt" not in files
    assert "secret.key" not in files
    assert "750 1:1" in files


def test_cache_hits_and_invalidation(portique: Portique, tmp_path: Path) -> None:
    ctx = _simple(
        tmp_path,
        "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-of-a\n",
        **{"a.txt": "first\n"},
    )
    first = portique("build", "-q", "-t", "cache:1", str(ctx)).stdout.strip()
    again = portique("build", "-t", "cache:1", str(ctx)).stdout
    assert again.count("Using cache") == 3
    assert _inspect(portique, "cache:1")["Id"] == first
    layers_before = _inspect(portique, "cache:1")["RootFS"]["Layers"]

    (ctx / "a.txt").write_text("second\n")
    changed = portique("build", "-t", "cache:2", str(ctx)).stdout
    # The RUN before the COPY stays cached; the COPY and what follows run again.
    assert changed.count("Using cache") == 1
    layers_after = _inspect(portique, "cache:2")["RootFS"]["Layers"]
    assert layers_after[:2] == layers_before[:2]
    assert layers_after[2:] != layers_before[2:]
    assert _run_in(portique, "cache:2", "cat", "/copy-of-a") == "second\n"

    nocache = portique("build", "--no-cache", "-t", "cache:3", str(ctx)).stdout
    assert "Using cache" not in nocache


def test_multi_stage_and_target(portique: Portique, tmp_path: Path) -> None:
    ctx = _simple(
        tmp_path,
        "FROM busybox AS builder\n"
        "RUN mkdir /out && echo built > /out/artifact\n"
        "FROM busybox AS broken\n"
        "RUN exit 3\n"
        "FROM busybox\n"
        "COPY --from=builder /out/artifact /artifact\n",
    )
    # The failing `broken` stage is not needed by the last stage: skipped.
    portique("build", "-t", "multi:final", str(ctx))
    assert _run_in(portique, "multi:final", "cat", "/artifact") == "built\n"
    portique("build", "--target", "builder", "-t", "multi:builder", str(ctx))
    assert _run_in(portique, "multi:builder", "cat", "/out/artifact") == "built\n"
    failed = portique("build", "--target", "broken", str(ctx), check=False)
    assert failed.returncode == 3
    assert "returned a non-zero code: 3" in failed.stderr


def test_failing_run_leaves_nothing(
    portique: Portique, tmp_path: Path, engine: dict[str, str]
) -> None:
    ctx = _simple(tmp_path, "FROM busybox\nRUN echo about to fail && exit 7\n")
    proc = portique("build", str(ctx), check=False)
    assert proc.returncode == 7
    assert "Dockerfile:2" in proc.stderr
    root = Path(engine["PORTIQUE_ROOT"])
    leftovers = list((root / "build").iterdir()) if (root / "build").exists() else []
    assert leftovers == []
    assert str(root / "build") not in Path("/proc/self/mountinfo").read_text()
    state = Path(engine["PORTIQUE_RUNROOT"]) / "runtime"
    left = (
        [p.name for p in state.iterdir() if p.name.startswith("build-")] if state.exists() else []
    )
    assert left == []


@pytest.mark.parametrize(
    "dockerfile",
    ["FROM busybox\nCOPY ../outside /x\n", "FROM busybox\nCOPY escape /x\n"],
)
def test_hostile_sources_refused(portique: Portique, tmp_path: Path, dockerfile: str) -> None:
    ctx = _simple(tmp_path, dockerfile)
    (tmp_path / "outside").write_text("secret")
    (ctx / "escape").symlink_to(tmp_path / "outside")
    proc = portique("build", str(ctx), check=False)
    assert proc.returncode == 125
    assert "outside the build context" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_dockerfile_names_the_line(portique: Portique, tmp_path: Path) -> None:
    ctx = _simple(tmp_path, "FROM busybox\nRUNN echo\n")
    proc = portique("build", str(ctx), check=False)
    assert proc.returncode == 125
    assert proc.stderr.strip() == "portique: Dockerfile:2: unknown instruction: RUNN"


def test_context_from_stdin_tar(portique: Portique, tmp_path: Path, engine: dict[str, str]) -> None:
    ctx = _simple(tmp_path, "FROM busybox\nCOPY hello.txt /\n", **{"hello.txt": "from a tarball\n"})
    tar = tmp_path / "ctx.tar"
    with tarfile.open(tar, "w") as tf:
        for name in ("Dockerfile", "hello.txt"):
            tf.add(ctx / name, arcname=name)
    with open(tar, "rb") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "portique", "build", "-t", "stdin:1", "-"],
            stdin=f,
            env=engine,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert _run_in(portique, "stdin:1", "cat", "/hello.txt") == "from a tarball\n"


def test_save_load_round_trip_keeps_digests(portique: Portique, tmp_path: Path) -> None:
    ctx = _simple(tmp_path, "FROM busybox\nRUN echo x > /x\n")
    image_id = portique("build", "-q", "-t", "roundtrip:1", str(ctx)).stdout.strip()
    layers = _inspect(portique, "roundtrip:1")["RootFS"]["Layers"]
    archive = tmp_path / "img.tar"
    portique("save", "-o", str(archive), "roundtrip:1")
    portique("rmi", "roundtrip:1")
    portique("load", "-i", str(archive))
    info = _inspect(portique, "roundtrip:1")
    assert info["Id"] == image_id
    assert info["RootFS"]["Layers"] == layers


def test_flags_onbuild_and_healthcheck(portique: Portique, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Other.dockerfile").write_text(
        "FROM busybox\n"
        "ARG FLAVOUR=plain\n"
        "RUN echo $FLAVOUR > /flavour\n"
        "HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD test -f /flavour\n"
        "ONBUILD RUN echo triggered > /onbuild\n"
    )
    iid = tmp_path / "iid"
    portique(
        "build", "-f", str(ctx / "Other.dockerfile"), "-t", "flags:1", "-t", "flags:latest",
        "--label", "team=core", "--build-arg", "FLAVOUR=spicy", "--iidfile", str(iid), str(ctx),
    )  # fmt: skip
    info = _inspect(portique, "flags:1")
    assert info["Id"] == iid.read_text().strip()
    assert set(info["RepoTags"]) == {"flags:1", "flags:latest"}
    cfg = info["Config"]
    assert cfg["Labels"] == {"team": "core"}
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -f /flavour"],
        "Interval": 5_000_000_000,
        "Timeout": 2_000_000_000,
        "Retries": 3,
    }
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild"]
    assert _run_in(portique, "flags:1", "cat", "/flavour") == "spicy\n"
    # A child image runs the trigger, and does not inherit it.
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM flags:1\n")
    portique("build", "-t", "flags:child", str(child))
    assert _run_in(portique, "flags:child", "cat", "/onbuild") == "triggered\n"
    assert not _inspect(portique, "flags:child")["Config"].get("OnBuild")


def test_push_pull_round_trip_keeps_digests(portique: Portique, tmp_path: Path) -> None:
    from support.registry import start_registry

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo pushed > /pushed\n")
    with start_registry(tmp_path / "reg", mode="plain") as reg:
        ref = f"{reg.host}/built:1"
        image_id = portique("build", "-q", "-t", ref, str(ctx)).stdout.strip()
        layers = _inspect(portique, ref)["RootFS"]["Layers"]
        portique("push", ref)
        portique("rmi", ref)
        portique("pull", "-q", ref)
        info = _inspect(portique, ref)
        assert info["Id"] == image_id
        assert info["RootFS"]["Layers"] == layers
        assert _run_in(portique, ref, "cat", "/pushed") == "pushed\n"
