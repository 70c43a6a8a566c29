#!/usr/bin/env python3
"""Benchmark `portique build` against buildah, podman and docker where installed.

A small multi-step Dockerfile (two RUNs and a COPY on busybox), built cold
(`--no-cache`) and fully cached, each tool timed as a whole process in the
same run, the tools taking turns run by run; medians and ratios to portique
are printed. Needs root.

    .venv/bin/python bench/build.py [--runs N] [--baseline OTHER/.venv/bin/portique]

The busybox base image is made from Debian's busybox-static, imported into a
throwaway portique root, and handed to the peers with `portique save`
(docker-archive), so nothing comes from a remote registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from peers import private_dockerd  # noqa: E402

from support.rootfs import make_busybox_rootfs  # noqa: E402

DOCKERFILE = """\
FROM {base}
RUN echo hello >/hello.txt && mkdir -p /app
RUN for i in 1 2 3; do echo $i >>/app/log; done
COPY file.txt /app/file.txt
"""
# The console script, as a user runs it (cold: PORTIQUE_WARM=off in the env below).
PORTIQUE = [str(Path(sys.executable).with_name("portique"))]


def nocache(cmd: list[str]) -> list[str]:
    """The same build command with --no-cache after its verb."""
    i = cmd.index("bud") if "bud" in cmd else cmd.index("build")
    return [*cmd[: i + 1], "--no-cache", *cmd[i + 1 :]]


class Failed(Exception):
    """A tool's build failed: its row says so, the others go on."""


def timed(
    cmd: list[str], runs: int, env: dict[str, str], setup: list[str] | None = None
) -> list[float]:
    times = []
    for _ in range(runs):
        if setup:
            subprocess.run(setup, env=env, capture_output=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise Failed(f"failed ({proc.returncode}): {proc.stderr.strip()[-200:]}")
        times.append(elapsed * 1000)
    return times


Variant = tuple[list[str], dict[str, str]]  # (build command, its environment)


def portique_variants(
    portique: list[str], baseline: str | None, ctx: Path, env: dict[str, str], stack: ExitStack
) -> dict[str, Variant]:
    """portique's builds in-process (PORTIQUE_WARM=off) and through the run
    root's warm fork-server, for this installation and `baseline`.

    All builds share the engine root (so the base image is there); each
    installation has its own run root (a warm server serves one installation),
    its server started by an untimed first build and stopped when `stack` closes."""
    build = ["build", "-q", "-t", "localhost/benchout:latest", str(ctx)]
    installs = {"portique": portique}
    if baseline:
        installs["before"] = [baseline]
    variants: dict[str, Variant] = {}
    for i, (name, exe) in enumerate(installs.items()):
        for label, mode in (("", "off"), (" warm", "auto")):
            venv = dict(
                env,
                PORTIQUE_RUNROOT=f"{env['PORTIQUE_RUNROOT']}-{i}",
                PORTIQUE_WARM=mode,
                PORTIQUE_WARM_IDLE="600",
            )
            if mode == "auto":
                subprocess.run([*exe, *build], env=venv, capture_output=True, check=False)
                stack.callback(
                    subprocess.run, [*exe, "warm", "stop"], env=venv, capture_output=True
                )
            variants[name + label] = ([*exe, *build], venv)
    return variants


def take_turns(variants: dict[str, Variant], runs: int) -> list[tuple[str, list[float]]]:
    """Cold (--no-cache) then cached rows of every variant, the variants taking
    turns run by run (a change of load falls on all of them); a failure is a
    row of its own."""
    rows = []
    for kind, count in (("cold", max(3, runs // 2)), ("cached", runs)):
        times: dict[str, list[float]] = {name: [] for name in variants}
        failed: dict[str, str] = {}
        for _ in range(count):
            for name, (cmd, venv) in variants.items():
                if name in failed:
                    continue
                try:
                    times[name] += timed(nocache(cmd) if kind == "cold" else cmd, 1, venv)
                except Failed as e:
                    failed[name] = str(e)
        for name in variants:
            label = f"{name} {kind}"
            rows.append(
                (f"{label}: {failed[name]}", []) if name in failed else (label, times[name])
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument(
        "--baseline",
        metavar="PORTIQUE",
        help="another installation's portique (e.g. /work/base/.venv/bin/portique),"
        " timed run by run with this one as the rows 'before'",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/build.py: run as root")
    tmp = Path(tempfile.mkdtemp(prefix="portique-bench-build-"))
    env = dict(
        os.environ,
        PORTIQUE_ROOT=str(tmp / "root"),
        PORTIQUE_RUNROOT=str(tmp / "run"),
        PORTIQUE_WARM="off",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's shell: .pyc files are used
    try:
        rootfs = make_busybox_rootfs(tmp / "busybox")
        with tarfile.open(tmp / "busybox-rootfs.tar", "w") as tf:
            tf.add(rootfs, arcname=".")
        subprocess.run(
            [*PORTIQUE, "import", "--change", 'CMD ["/bin/sh"]', str(tmp / "busybox-rootfs.tar"),
             "localhost/benchbase:latest"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        archive = tmp / "benchbase.tar"
        subprocess.run(
            [*PORTIQUE, "save", "-o", str(archive), "localhost/benchbase:latest"],
            env=env,
            check=True,
        )
        ctx = tmp / "ctx"
        ctx.mkdir()
        (ctx / "file.txt").write_text("hello from the build context\n")
        (ctx / "Dockerfile").write_text(DOCKERFILE.format(base="localhost/benchbase:latest"))

        rows: list[tuple[str, list[float]]] = []
        stack = ExitStack()
        with stack:
            variants = portique_variants(PORTIQUE, args.baseline, ctx, env, stack)
            if shutil.which("buildah"):
                subprocess.run(
                    ["buildah", "pull", f"docker-archive:{archive}"],
                    capture_output=True,
                    check=True,
                )
                # crun refuses this host's cgroup v1 hybrid layout; runc does not.
                runtime = ["--runtime", "runc"] if shutil.which("runc") else []
                variants["buildah bud"] = (
                    ["buildah", "bud", *runtime, "--layers", "-q", "-t",
                     "localhost/benchout:latest", str(ctx)],
                    env,
                )  # fmt: skip
            else:
                rows.append(("buildah: not installed", []))
            if shutil.which("podman"):
                subprocess.run(
                    ["podman", "load", "-i", str(archive)], capture_output=True, check=True
                )
                # runc, and rlimits within this session's hard limits (bench/run.py).
                variants["podman build"] = (
                    ["podman", "--runtime", "runc", "build", "--ulimit", "nofile=1024:1024",
                     "--ulimit", "nproc=1024:1024", "-q", "-t", "localhost/benchout:latest",
                     str(ctx)],
                    env,
                )  # fmt: skip
            else:
                rows.append(("podman: not installed", []))
            # Docker's classic builder (DOCKER_BUILDKIT=0) on a private dockerd.
            docker_env = stack.enter_context(private_dockerd(tmp / "d", archive))
            if docker_env is None:
                rows.append(("docker: no private dockerd", []))
            else:
                denv = dict(
                    env,
                    DOCKER_HOST=docker_env["DOCKER_HOST"],
                    DOCKER_CONFIG=docker_env["DOCKER_CONFIG"],
                    DOCKER_BUILDKIT="0",
                )
                variants["docker build (classic)"] = (
                    ["docker", "build", "-q", "-t", "localhost/benchout:latest", str(ctx)],
                    denv,
                )
            rows = take_turns(variants, args.runs) + rows

        base = {
            kind: statistics.median(t)
            for name, t in rows
            if name in ("portique cold", "portique cached")
            for kind in [name.split()[-1]]
            if t
        }
        print(f"{'build':<24}{'median ms':>12}{'min':>10}{'max':>10}{'peer/portique':>15}")
        for name, t in rows:
            if not t:
                print(f"{name:<24}{'-':>12}")
                continue
            med = statistics.median(t)
            ratio = med / base[name.split()[-1]]
            print(f"{name:<24}{med:>12.1f}{min(t):>10.1f}{max(t):>10.1f}{ratio:>15.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
