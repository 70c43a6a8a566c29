#!/usr/bin/env python3
"""`portique serve` vs dockerd, through the same clients, in one run.

Usage (as root, from the repository):
    .venv/bin/python bench/serve.py [--runs 20] [--warmup 3] [--py-runs 10]

Starts, each in a private temporary directory and stopped by pid at the end:
`portique serve` on its own engine root, a private dockerd (own data root,
exec root, socket, pid file, `--exec-opt native.cgroupdriver=cgroupfs`, a
`portique/bench-serve-*` cgroup parent, no bridge or iptables) with the
containerd it starts, and a private containerd for `ctr run --rm`. The same
busybox (Debian's busybox-static) is imported into all three. Then, with the
same docker CLI (/usr/local/bin/docker 28, else docker on PATH):

1. `docker run --rm --network none busybox true` against dockerd and against
   portique serve, and `ctr run --rm` beside them: one hyperfine call;
2. `docker exec CONTAINER true` into a running `sleep` container of each;
3. docker-py `containers.run("busybox", "true", remove=True)`, timed in
   this process (median of --py-runs);
4. idle memory: the PSS of the server's process beside dockerd's plus its
   containerd's.

Prints medians and the ratios portique serve / dockerd (and / ctr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))

from run import busybox_tar, ctr_import, measure, monitor_pss, private_containerd, quiet  # noqa: E402

PORTIQUE = str(Path(sys.executable).with_name("portique"))
DOCKER = next(
    (
        p
        for p in ("/usr/local/bin/docker", shutil.which("docker") or "")
        if p and os.access(p, os.X_OK)
    ),
    "docker",
)


def wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode})")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s, contextlib.suppress(OSError):
                s.connect(str(path))
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not listening after {timeout} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def portique_serve(tmp: Path, tar: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    run_root = Path(f"/run/pq-bench-serve-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(tmp / "pq-root"), PORTIQUE_RUNROOT=str(run_root))
    subprocess.run(
        [PORTIQUE, "import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest"],
        env=env,
        check=True,
        capture_output=True,
    )
    sock = tmp / "pq.sock"
    with open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [PORTIQUE, "serve", "-H", f"unix://{sock}"], env=env, stdout=log, stderr=log
        )
    try:
        wait_socket(sock, proc, "portique serve")
        yield f"unix://{sock}", env, proc.pid
    finally:
        stop(proc)
        ids = subprocess.run(
            [PORTIQUE, "ps", "-aq"], env=env, capture_output=True, text=True, check=False
        ).stdout.split()
        if ids:
            subprocess.run([PORTIQUE, "rm", "-f", *ids], env=env, capture_output=True, check=False)
        shutil.rmtree(run_root, ignore_errors=True)


@contextlib.contextmanager
def private_dockerd(tmp: Path, tar: Path) -> Iterator[tuple[str | None, int]]:
    if not shutil.which("dockerd"):
        yield None, 0
        return
    from support.daemons import Daemon, kill_pidfile, kill_strays, remove_cgroup_tree, unmount_under

    base = tmp / "dockerd"
    base.mkdir()
    parent = f"portique/bench-serve-{os.getpid()}"
    (base / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
    argv = [
        "dockerd",
        "--config-file", str(base / "daemon.json"),
        "--data-root", str(base / "data"),
        "--exec-root", str(base / "exec"),
        "--host", f"unix://{base / 'docker.sock'}",
        "--pidfile", str(base / "docker.pid"),
        "--exec-opt", "native.cgroupdriver=cgroupfs",
        "--cgroup-parent", f"/{parent}",
        "--bridge", "none",
        "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
        "--userland-proxy=false",
    ]  # fmt: skip
    daemon = Daemon("dockerd", argv, base / "dockerd.log")
    host = f"unix://{base / 'docker.sock'}"
    try:
        daemon.wait_until(
            lambda: (base / "docker.sock").exists() and quiet([DOCKER, "-H", host, "version"]),
            "answering",
        )
        subprocess.run(
            [
                DOCKER,
                "-H",
                host,
                "import",
                "--change",
                'CMD ["/bin/sh"]',
                str(tar),
                "busybox:latest",
            ],
            check=True,
            capture_output=True,
        )
        yield host, daemon.proc.pid
    finally:
        ids = subprocess.run(
            [DOCKER, "-H", host, "ps", "-aq"], capture_output=True, text=True, check=False
        ).stdout.split()
        if ids:
            subprocess.run([DOCKER, "-H", host, "rm", "-f", *ids], capture_output=True, check=False)
        daemon.stop()
        kill_pidfile(base / "exec/containerd/containerd.pid")
        kill_strays(base, (base / "exec/containerd/daemon/io.containerd.runtime.v2.task/moby",))
        unmount_under(base)
        remove_cgroup_tree(parent)


def pss_tree(pid: int) -> int:
    """PSS (kB) of `pid` and its descendants."""
    total = 0
    todo = [pid]
    for _ in range(10000):
        if not todo:
            break
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += monitor_pss(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [
                    int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                ]
    return total


def docker_py_run(host: str, runs: int) -> float:
    import docker

    client = docker.DockerClient(base_url=host, version="auto")
    try:
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            client.containers.run("busybox", ["true"], remove=True, network_mode="none")
            if i:  # the first one warms up
                times.append(time.perf_counter() - t0)
    finally:
        client.close()
    times.sort()
    return times[len(times) // 2]


def report(title: str, medians: dict[str, float]) -> None:
    print(f"\n{title}")
    for name, t in medians.items():
        print(f"  {name:<16} {t * 1000:8.1f} ms")
    serve = medians.get("portique-serve")
    for name, t in medians.items():
        if serve and name != "portique-serve" and t:
            print(f"  portique-serve / {name} = {serve / t:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--py-runs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/serve.py: run me as root", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pq-bench-serve-") as tmp_text:
        tmp = Path(tmp_text)
        tar = busybox_tar(tmp)
        with (
            portique_serve(tmp, tar) as (pq_host, env, server_pid),
            private_dockerd(tmp, tar) as (dk_host, dockerd_pid),
            private_containerd(tmp) as ctr_address,
        ):
            time.sleep(2)  # idle: nothing served yet
            idle = {"portique-serve": pss_tree(server_pid)}
            if dk_host:
                idle["dockerd+containerd"] = pss_tree(dockerd_pid)
            ctr_image = ctr_import(ctr_address, env, tmp)
            run = {
                "portique-serve": [
                    DOCKER,
                    "-H",
                    pq_host,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "true",
                ]
            }
            if dk_host:
                run["dockerd"] = [
                    DOCKER,
                    "-H",
                    dk_host,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "true",
                ]
            if ctr_address and ctr_image:
                run["ctr"] = [
                    "ctr",
                    "-a",
                    ctr_address,
                    "run",
                    "--rm",
                    ctr_image,
                    "pq-bench-ctr",
                    "/bin/true",
                ]
            report(
                "docker run --rm busybox true (median)", measure(run, env, args.runs, args.warmup)
            )
            execs: dict[str, list[str]] = {}
            for name, host in (("portique-serve", pq_host), ("dockerd", dk_host)):
                if host is None:
                    continue
                cid = subprocess.run(
                    [DOCKER, "-H", host, "run", "-d", "--network", "none", "busybox", "sleep", "600"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip
                execs[name] = [DOCKER, "-H", host, "exec", cid, "true"]
            report(
                "docker exec CONTAINER true (median)", measure(execs, env, args.runs, args.warmup)
            )
            py = {"portique-serve": docker_py_run(pq_host, args.py_runs)}
            if dk_host:
                py["dockerd"] = docker_py_run(dk_host, args.py_runs)
            report("docker-py containers.run(busybox, true, remove=True) (median)", py)
            print("\nidle memory (PSS)")
            for name, kb in idle.items():
                print(f"  {name:<20} {kb / 1024:8.1f} MiB")
            if len(idle) == 2:
                print(
                    f"  portique-serve / dockerd+containerd = {idle['portique-serve'] / idle['dockerd+containerd']:.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
