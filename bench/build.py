#!/usr/bin/env python3
"""Benchmark `portique build` against buildah, podman and docker where installed.

A small multi-step Dockerfile (two RUNs and a COPY on busybox), built cold
(`--no-cache`) and fully cached, each tool timed as a whole process in the
same run; medians and ratios to portique are printed. Needs root.

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


def both(
    name: str, cmd: list[str], runs: int, env: dict[str, str]
) -> list[tuple[str, list[float]]]:
    """The cold (--no-cache) and cached rows of one tool; a failure is a row of its own."""
    try:
        cold = timed(nocache(cmd), max(3, runs // 2), env)
        cached = timed(cmd, runs, env)
    except Failed as e:
        return [(f"{name}: {e}", [])]
    return [(f"{name} cold", cold), (f"{name} cached", cached)]


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


def portique_rows(
    portique: list[str], baseline: str | None, ctx: Path, runs: int, env: dict[str, str]
) -> list[tuple[str, list[float]]]:
    """portique's rows: cold (--no-cache) and cached, each in-process
    (PORTIQUE_WARM=off) and through the run root's warm fork-server, for this
    installation and `baseline`; the variants of one row take turns run by run.

    All builds share the engine root (so the base image is there), each
    installation has its own run root (a warm server serves one installation).
    A warm server is started by an untimed first build and stopped at the end."""
    build = ["build", "-q", "-t", "localhost/benchout:latest", str(ctx)]
    installs = {"portique": portique}
    if baseline:
        installs["before"] = [baseline]
    variants: dict[str, tuple[list[str], dict[str, str]]] = {}
    for i, (name, exe) in enumerate(installs.items()):
        for label, mode in (("", "off"), (" warm", "auto")):
            venv = dict(
                env,
                PORTIQUE_RUNROOT=f"{env['PORTIQUE_RUNROOT']}-{i}",
                PORTIQUE_WARM=mode,
                PORTIQUE_WARM_IDLE="600",
            )
            variants[name + label] = ([*exe, *build], venv)
    try:
        for cmd, venv in variants.values():  # warm servers start here, untimed
            subprocess.run(cmd, env=venv, capture_output=True, check=False)
        rows = []
        for kind, runs_of_kind in (("cold", max(3, runs // 2)), ("cached", runs)):
            times: dict[str, list[float]] = {name: [] for name in variants}
            failed: dict[str, str] = {}
            for _ in range(runs_of_kind):
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
    finally:
        for exe, venv in ((v[0][: -len(build)], v[1]) for v in variants.values()):
            if venv["PORTIQUE_WARM"] == "auto":
                subprocess.run([*exe, "warm", "stop"], env=venv, capture_output=True, check=False)


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
        rows += portique_rows(PORTIQUE, args.baseline, ctx, args.runs, env)
        if shutil.which("buildah"):
            subprocess.run(
                ["buildah", "pull", f"docker-archive:{archive}"], capture_output=True, check=True
            )
            # crun refuses this host's cgroup v1 hybrid layout; runc does not.
            runtime = ["--runtime", "runc"] if shutil.which("runc") else []
            bud = ["buildah", "bud", *runtime, "--layers", "-q", "-t", "localhost/benchout:latest",
                   str(ctx)]  # fmt: skip
            rows += both("buildah bud", bud, args.runs, env)
        else:
            rows.append(("buildah: not installed", []))
        if shutil.which("podman"):
            subprocess.run(["podman", "load", "-i", str(archive)], capture_output=True, check=True)
            # runc, and rlimits within this session's hard limits (bench/run.py).
            pb = ["podman", "--runtime", "runc", "build", "--ulimit", "nofile=1024:1024",
                  "--ulimit", "nproc=1024:1024", "-q", "-t", "localhost/benchout:latest",
                  str(ctx)]  # fmt: skip
            rows += both("podman build", pb, args.runs, env)
        else:
            rows.append(("podman: not installed", []))
        # Docker's classic builder (DOCKER_BUILDKIT=0) on a private dockerd.
        with private_dockerd(tmp / "d", archive) as docker_env:
            if docker_env is None:
                rows.append(("docker: no private dockerd", []))
            else:
                denv = dict(
                    env,
                    DOCKER_HOST=docker_env["DOCKER_HOST"],
                    DOCKER_CONFIG=docker_env["DOCKER_CONFIG"],
                    DOCKER_BUILDKIT="0",
                )
                db = ["docker", "build", "-q", "-t", "localhost/benchout:latest", str(ctx)]
                rows += both("docker build (classic)", db, args.runs, denv)

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
