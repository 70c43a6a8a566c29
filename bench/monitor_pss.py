#!/usr/bin/env python3
"""Memory of portique's per-container monitors: re-executed (cold) against forked
from the warm server (portique/warm), at N idle containers.

Usage (as root, from the repository):
    .venv/bin/python bench/monitor_pss.py [--containers 20] [--baseline OTHER/.venv/bin/portique]

For each mode, a private engine root and run root: N `run -d --network none
busybox sleep 600` containers, then each monitor's PSS and private dirty
memory (/proc/PID/smaps_rollup), their sum, and in warm mode the server's
own RSS and PSS, and the monitors' PSS again once the server is stopped (its
pages are then shared by the monitors alone). Everything it started is
removed at the end. `--baseline` measures another installation's `portique`
the same way, in the same run (before/after). Each mode also prints where
one monitor's private dirty memory is, by mapping (/proc/PID/smaps).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
PORTIQUE = str(Path(sys.executable).parent / "portique")


def rollup(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def busybox_tar(dest: Path) -> Path:
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


def pq(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [env["PQ_BENCH_EXE"], *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def private_by_mapping(pid: int) -> dict[str, int]:
    """Private_Dirty kB of `pid` by mapping (file name, [heap], [anon], ...)."""
    out: dict[str, int] = {}
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5].rsplit("/", 1)[-1] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Private_Dirty:" and int(parts[1]):
                out[name] = out.get(name, 0) + int(parts[1])
    return out


def monitor_of(env: dict[str, str], cid: str) -> int:
    init = int(pq(env, "inspect", "-f", "{{.State.Pid}}", cid).strip())
    stat = Path(f"/proc/{init}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def measure(mode: str, n: int, tar: Path, base: Path, exe: str, label: str) -> None:
    tag = f"{label}-{mode}"
    root, run = base / f"{tag}-root", Path(f"/run/pq-pss-{tag}-{os.getpid()}")
    env = dict(os.environ, PORTIQUE_ROOT=str(root), PORTIQUE_RUNROOT=str(run), PQ_BENCH_EXE=exe)
    env["PORTIQUE_WARM"] = "off" if mode == "cold" else ""
    cold = dict(env, PORTIQUE_WARM="off")
    ids: list[str] = []
    try:
        pq(cold, "import", str(tar), "busybox:latest")
        if mode == "warm":
            pq(cold, "warm", "start")
        for _ in range(n):  # one at a time: the clean-up knows each one started
            cid = pq(env, "run", "-d", "--network", "none", "busybox", "sleep", "600").strip()
            ids.append(cid)
        monitors = [monitor_of(cold, cid) for cid in ids]
        time.sleep(1.0)  # let the monitors settle into their loops (a bench, not a test)
        report(f"{label} {mode}: {n} monitors", [rollup(m) for m in monitors])
        mine = sorted(private_by_mapping(monitors[0]).items(), key=lambda kv: -kv[1])
        print("  one monitor's private dirty kB:", ", ".join(f"{k} {v}" for k, v in mine))
        if mode == "warm":
            server = int(pq(cold, "warm", "status").split("pid ")[1].split(",")[0])
            s = rollup(server)
            print(
                f"{label} warm: server RSS {s['Rss'] / 1024:.1f} MiB, PSS {s['Pss'] / 1024:.1f} MiB"
            )
            for z in zygotes(server):
                r = rollup(z)
                print(
                    f"{label} warm: zygote RSS {r['Rss'] / 1024:.1f} MiB, PSS"
                    f" {r['Pss'] / 1024:.2f} MiB, private dirty {r['Private_Dirty'] / 1024:.2f} MiB"
                )
            pq(cold, "warm", "stop")
            report(f"{label} warm, server stopped: {n} monitors", [rollup(m) for m in monitors])
    finally:
        if ids:
            subprocess.run([exe, "rm", "-f", *ids], env=cold, capture_output=True, timeout=300)
        subprocess.run([exe, "warm", "stop"], env=cold, capture_output=True, timeout=60)
        if root.exists():
            from portique.network.networks import Networks

            nets = Networks(root, run_root=run)
            try:
                nets.destroy()
            finally:
                nets.close()
        shutil.rmtree(run, ignore_errors=True)


def zygotes(server: int) -> list[int]:
    """The server's children named pq-zygote (warm/zygote.py's COMM)."""
    out = []
    for task in Path(f"/proc/{server}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().strip() == "pq-zygote":
                    out.append(int(child))
    return out


def report(title: str, rollups: list[dict[str, int]]) -> None:
    pss = [r["Pss"] for r in rollups]
    dirty = [r["Private_Dirty"] for r in rollups]
    print(
        f"{title}: PSS median {statistics.median(pss) / 1024:.2f} MiB"
        f" (sum {sum(pss) / 1024:.1f} MiB), private dirty median"
        f" {statistics.median(dirty) / 1024:.2f} MiB"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--baseline", help="another installation's portique, measured first")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("monitor_pss.py: run as root", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="pq-pss-") as tmp:
        base = Path(tmp)
        tar = busybox_tar(base / "img")
        exes = [("baseline", args.baseline)] if args.baseline else []
        for label, exe in [*exes, ("this", PORTIQUE)]:
            for mode in ("cold", "warm"):
                measure(mode, args.containers, tar, base, exe, label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
