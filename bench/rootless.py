#!/usr/bin/env python3
"""Rootless `run --rm busybox true`: portique as a user against root's portique
and against rootless podman, and the cost of the user-mode network per start.

Usage (as root, from the repository; scripts/setup.sh made the user):
    .venv/bin/python bench/rootless.py [--runs 20] [--warmup 3] [--user portique-test]

One hyperfine call (-N: no shell) times, side by side:

- `root --network none`: root's portique on a private engine root;
- `rootless --network none` and `rootless default (slirp4netns)`: the user's
  portique (setpriv, a clean environment, XDG dirs in a private directory);
- `podman rootless --network none` and `podman rootless slirp4netns`: Debian's
  podman as the same user, with its own storage in the same directory
  (runc, which runs without cgroups where a user has none, as here; crun
  1.8 refuses this hybrid cgroup layout).

Each engine imports the same busybox tarball first; a peer that cannot run
here is reported and left out. Prints medians, the rootless ratios to root's
and to podman's, and the user-mode network's cost (default minus none).
Ends the user's pause process and podman's by their pids, and removes the
directory.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
PORTIQUE = str(Path(sys.executable).with_name("portique"))


def as_user(user: pwd.struct_passwd, base: Path, argv: list[str]) -> list[str]:
    env = [
        f"HOME={base}/home",
        f"XDG_DATA_HOME={base}/data",
        f"XDG_RUNTIME_DIR={base}/run",
        "PATH=/usr/local/bin:/usr/bin:/bin",
    ]
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        "env",
        "-i",
        *env,
        *argv,
    ]


def ok(cmd: list[str]) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return "" if p.returncode == 0 else (p.stderr.strip().splitlines() or ["failed"])[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--user", default="portique-test")
    args = ap.parse_args()
    from support.rootless_cli import busybox_tar

    user = pwd.getpwnam(args.user)
    base = Path(tempfile.mkdtemp(prefix="pq-bench-rl-", dir="/tmp"))
    os.chmod(base, 0o755)
    root_run = Path(f"/run/pq-bench-rl-{os.getpid()}")
    try:
        for sub in ("home", "data", "run"):
            (base / sub).mkdir(mode=0o700)
            os.chown(base / sub, user.pw_uid, user.pw_gid)
        tar = busybox_tar(base)
        root = [PORTIQUE, "--root", str(base / "root"), "--runroot", str(root_run)]
        user_pq = as_user(user, base, [PORTIQUE])
        podman = as_user(
            user,
            base,
            ["podman", "--runtime=runc", "--cgroup-manager=cgroupfs", "--events-backend=file"],
        )
        commands: dict[str, list[str]] = {}
        skipped: dict[str, str] = {}
        for name, cli, imp, run in (
            ("root --network none", root, ["import", str(tar), "bb"], ["--network", "none"]),
            ("rootless --network none", user_pq, ["import", str(tar), "bb"], ["--network", "none"]),
            ("rootless default (slirp4netns)", user_pq, None, []),
            (
                "podman rootless --network none",
                podman,
                ["import", str(tar), "bb"],
                ["--network", "none"],
            ),
            (
                "podman rootless slirp4netns",
                podman,
                None,
                ["--network", "slirp4netns"],
            ),
        ):
            if name.startswith("podman") and shutil.which("podman") is None:
                skipped[name] = "podman is not installed"
                continue
            if imp is not None:
                why = ok([*cli, *imp])
                if why:
                    skipped[name] = f"cannot import busybox: {why}"
                    continue
            cmd = [*cli, "run", "--rm", *run, "bb", "/bin/true"]
            why = ok(cmd)
            if why:
                skipped[name] = why
                continue
            commands[name] = cmd
        out = base / "hyperfine.json"
        hf = ["hyperfine", "-N", "--warmup", str(args.warmup), "--runs", str(args.runs)]
        hf += ["--export-json", str(out)]
        for name, cmd in commands.items():
            hf += ["-n", name, " ".join(cmd)]
        subprocess.run(hf, check=True, stdout=subprocess.DEVNULL)
        results = {r["command"]: r for r in json.loads(out.read_text())["results"]}
        med = {name: results[name]["median"] * 1000 for name in results}
        print(f"{'command':36} {'median ms':>10} {'min ms':>8}")
        for name, r in results.items():
            print(f"{name:36} {med[name]:10.1f} {r['min'] * 1000:8.1f}")
        for name, why in skipped.items():
            print(f"{name:36} not measured: {why}")
        pairs = (
            ("rootless --network none", "root --network none"),
            ("rootless --network none", "podman rootless --network none"),
            ("rootless default (slirp4netns)", "podman rootless slirp4netns"),
        )
        for a, b in pairs:
            if a in med and b in med:
                print(f"ratio {a} / {b}: {med[a] / med[b]:.2f}")
        for a, b in (
            ("rootless default (slirp4netns)", "rootless --network none"),
            ("podman rootless slirp4netns", "podman rootless --network none"),
        ):
            if a in med and b in med:
                print(f"user-mode network cost ({a}): {med[a] - med[b]:+.1f} ms")
        return 0
    finally:
        pid_file = base / "run" / "portique" / "pause.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        pause = base / "run" / "libpod" / "tmp" / "pause.pid"
        if pause.exists():
            try:
                os.kill(int(pause.read_text().strip()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["rm", "-rf", str(base), str(root_run)], check=False)


if __name__ == "__main__":
    raise SystemExit(main())
