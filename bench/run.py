#!/usr/bin/env python3
"""`portique run --rm busybox true` end to end, and `exec` latency, against the peers.

Usage (as root, from the repository):
    .venv/bin/python bench/run.py [--runs 20] [--warmup 3] [--baseline OTHER/.venv/bin/portique]

`--baseline` adds another installation's `portique` (another checkout, e.g.
the commit before a change) to the same hyperfine calls, on the same engine
root, as the row "before": a before/after comparison measured in one run.

Uses a private engine root (a temporary directory) with a busybox image
imported from Debian's busybox-static, so nothing of /var/lib/portique is
touched. Peers (podman, docker with a reachable daemon, containerd's ctr) are
measured in the same hyperfine invocation when they are installed and can
import the same busybox tarball; otherwise their row says why not. Prints
medians, portique's ratio to each peer, the monitor's memory (PSS) and the
import time of the CLI's `run` path (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
PORTIQUE = str(Path(sys.executable).with_name("portique"))


def busybox_tar(dest: Path) -> Path:
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


def quiet(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> bool:
    try:
        return (
            subprocess.run(
                cmd, env=env, capture_output=True, timeout=timeout, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def peer_commands(
    tar: Path, ctr_address: str | None, ctr_image: str | None
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """name -> `run --rm busybox true` argv for each usable peer; name -> reason for the others."""
    usable: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    if shutil.which("podman"):
        podman = ["podman", "run", "--rm", "pq-bench-busybox", "/bin/true"]
        if not quiet(["podman", "import", str(tar), "pq-bench-busybox"]):
            missing["podman"] = "installed, but cannot import the busybox image"
        elif not quiet(podman):  # e.g. crun refused the RLIMIT_NOFILE it wants
            missing["podman"] = "installed, but cannot run a container here"
        else:
            usable["podman"] = podman
    else:
        missing["podman"] = "not installed"
    if shutil.which("docker"):
        if not quiet(["docker", "info"], timeout=10):
            missing["docker"] = "CLI installed, no reachable dockerd"
        elif quiet(["docker", "import", str(tar), "pq-bench-busybox"]):
            usable["docker"] = ["docker", "run", "--rm", "pq-bench-busybox", "/bin/true"]
        else:
            missing["docker"] = "cannot import the busybox image"
    else:
        missing["docker"] = "not installed"
    if not (shutil.which("ctr") and shutil.which("containerd")):
        missing["ctr"] = "not installed"
    elif ctr_address is None:
        missing["ctr"] = "containerd would not start"
    elif ctr_image is None:
        missing["ctr"] = "cannot import the busybox image into containerd"
    else:
        usable["ctr"] = [
            "ctr",
            "-a",
            ctr_address,
            "run",
            "--rm",
            ctr_image,
            "pq-bench-ctr",
            "/bin/true",
        ]
    return usable, missing


@contextlib.contextmanager
def private_containerd(tmp: Path) -> Iterator[str | None]:
    """A containerd of our own (root, state and socket in private dirs), stopped after."""
    if not (shutil.which("containerd") and shutil.which("ctr")):
        yield None
        return
    state = Path(f"/run/pq-bench-ctrd-{os.getpid()}")
    address = str(state / "c.sock")
    log = open(tmp / "containerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "containerd",
            "--root",
            str(tmp / "ctrd-root"),
            "--state",
            str(state),
            "--address",
            address,
        ],
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(100):
            if quiet(["ctr", "-a", address, "version"], timeout=5):
                break
            time.sleep(0.1)
        else:
            yield None
            return
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", str(state)], capture_output=True, check=False)
        shutil.rmtree(state, ignore_errors=True)


def ctr_import(address: str | None, env: dict[str, str], tmp: Path) -> str | None:
    """The busybox image, saved by portique as an archive, imported into containerd."""
    if address is None:
        return None
    archive = tmp / "busybox-image.tar"
    if not quiet([PORTIQUE, "save", "-o", str(archive), "busybox:latest"], env=env):
        return None
    if not quiet(["ctr", "-a", address, "image", "import", str(archive)]):
        return None
    return "docker.io/library/busybox:latest"


def hyperfine(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            "hyperfine",
            "-N",
            "--style",
            "basic",
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--export-json",
            out.name,
        ]
        for name, cmd in commands.items():
            argv += ["-n", name, " ".join(cmd)]
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(Path(out.name).read_text())
    return {r["command"]: r["median"] for r in data["results"]}


def python_timing(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    out = {}
    for name, cmd in commands.items():
        for _ in range(warmup):
            subprocess.run(cmd, env=env, capture_output=True, check=True)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        times.sort()
        out[name] = times[len(times) // 2]
    return out


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    if shutil.which("hyperfine"):
        return hyperfine(commands, env, runs, warmup)
    return python_timing(commands, env, runs, warmup)


def report(title: str, medians: dict[str, float], missing: dict[str, str]) -> None:
    print(f"\n{title}")
    base = medians.get("portique")
    for name, t in medians.items():
        ratio = "" if name == "portique" or not base else f"   portique/{name} = {base / t:.2f}"
        print(f"  {name:<10} {t * 1000:8.1f} ms{ratio}")
    for name, why in missing.items():
        print(f"  {name:<10} {'-':>8}    ({why})")
    if "before" in medians and base:
        print(f"  (portique now / before: {base / medians['before']:.3f})")


def import_time(env: dict[str, str]) -> float:
    code = (
        "import portique.cli.docker.main as m; from portique.cli.docker.commands import run, create"
    )
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total / 1e6


def monitor_pss(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--baseline", help="another installation's portique, measured beside")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/run.py: run me as root", file=sys.stderr)
        return 1
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="pq-bench-") as tmp:
        run_root = f"/run/pq-bench-{os.getpid()}"
        env = dict(os.environ, PORTIQUE_ROOT=f"{tmp}/root", PORTIQUE_RUNROOT=run_root)
        tar = busybox_tar(Path(tmp))
        subprocess.run(
            [PORTIQUE, "import", str(tar), "busybox:latest"],
            env=env,
            check=True,
            capture_output=True,
        )
        try:
            with private_containerd(Path(tmp)) as ctr_address:
                ctr_image = ctr_import(ctr_address, env, Path(tmp))
                peers, missing = peer_commands(tar, ctr_address, ctr_image)
                bench_all(args, env, peers, missing, ctr_address)
        finally:
            leftover = subprocess.run(
                [PORTIQUE, "ps", "-aq"], env=env, capture_output=True, text=True
            ).stdout.split()
            if leftover:
                subprocess.run(
                    [PORTIQUE, "rm", "-f", *leftover], env=env, capture_output=True, check=False
                )
            shutil.rmtree(run_root, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _run_d(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(
        [PORTIQUE, "run", "-d", *argv], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def bench_all(
    args: argparse.Namespace,
    env: dict[str, str],
    peers: dict[str, list[str]],
    missing: dict[str, str],
    ctr_address: str | None,
) -> None:
    before = {"before": [args.baseline]} if args.baseline else {}

    def with_before(cmd: list[str]) -> dict[str, list[str]]:
        """`cmd` (a portique command line) for this portique and the baseline's."""
        return {"portique": cmd, **{k: v + cmd[1:] for k, v in before.items()}}

    runs = {**with_before([PORTIQUE, "run", "--rm", "busybox", "/bin/true"]), **peers}
    report("run --rm busybox true (median)", measure(runs, env, args.runs, args.warmup), missing)
    nonet = with_before([PORTIQUE, "run", "--rm", "--network", "none", "busybox", "/bin/true"])
    if "ctr" in peers:
        # ctr run sets up no network at all: this is the like-for-like row.
        nonet["ctr"] = peers["ctr"]
    report(
        "run --rm --network none busybox true (median; no veth/bridge work)",
        measure(nonet, env, args.runs, args.warmup),
        {},
    )
    det = with_before([PORTIQUE, "run", "-d", "busybox", "/bin/true"])
    report(
        "run -d busybox true (median; containers left exited)",
        measure(det, env, args.runs, args.warmup),
        {},
    )
    cid = _run_d(env, "busybox", "sleep", "600")
    execs = with_before([PORTIQUE, "exec", cid, "/bin/true"])
    exec_missing = dict(missing)
    if ctr_address and "ctr" in peers:
        image = peers["ctr"][5]
        started = subprocess.run(
            ["ctr", "-a", ctr_address, "run", "-d", image, "pq-bench-sleep", "sleep", "600"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if started.returncode == 0:
            execs["ctr"] = [
                "ctr",
                "-a",
                ctr_address,
                "task",
                "exec",
                "--exec-id",
                "e1",
                "pq-bench-sleep",
                "/bin/true",
            ]
    for name in peers:
        if name not in execs:
            exec_missing[name] = "exec not measured"
    try:
        report(
            "exec CONTAINER true (median)",
            measure(execs, env, args.runs, args.warmup),
            exec_missing,
        )
    finally:
        if "ctr" in execs and ctr_address:
            quiet(["ctr", "-a", ctr_address, "task", "kill", "-s", "KILL", "pq-bench-sleep"])
            time.sleep(0.5)
            quiet(["ctr", "-a", ctr_address, "task", "rm", "-f", "pq-bench-sleep"])
            quiet(["ctr", "-a", ctr_address, "container", "rm", "pq-bench-sleep"])
    ids = [cid] + [_run_d(env, "busybox", "sleep", "600") for _ in range(9)]
    time.sleep(0.5)
    pss = [
        monitor_pss(int(pid))
        for c in ids
        for pid in subprocess.run(
            ["pgrep", "-f", f"id={c}"], capture_output=True, text=True
        ).stdout.split()
    ]
    if pss:
        print(
            f"\nmonitor memory, {len(pss)} containers running: PSS per monitor"
            f" {sum(pss) / len(pss) / 1024:.2f} MiB (min {min(pss) / 1024:.2f}, max {max(pss) / 1024:.2f})"
        )
    print(
        f"\nimport time of the `run` CLI path (python -X importtime, top-level sum): {import_time(env) * 1000:.1f} ms"
    )
    ver = measure(with_before([PORTIQUE, "--version"]), env, args.runs, args.warmup)
    for name, t in ver.items():
        print(f"{name} --version (interpreter start-up + CLI import): {t * 1000:.1f} ms")
    ps = measure(with_before([PORTIQUE, "ps", "-a"]), env, args.runs, args.warmup)
    for name, t in ps.items():
        print(f"{name} ps -a: {t * 1000:.1f} ms")
    subprocess.run([PORTIQUE, "rm", "-f", *ids], env=env, capture_output=True, check=False)


if __name__ == "__main__":
    raise SystemExit(main())
