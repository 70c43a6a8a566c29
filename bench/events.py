"""What recording events costs `portique run --rm`: this tree against a base
revision without events, side by side in one run, and the record's own costs.

    sudo .venv/bin/python bench/events.py [--base 1700a87] [--runs 30] [--network none]

- checks the base revision's `src/` out of git into a temporary directory and
  runs the same console script with PYTHONPATH pointing there (before) or not
  (after), alternating, on one engine root holding a busybox image imported
  from Debian's busybox-static;
- prints the median of each and their ratio (after / before);
- times `events.record` (the CLI's and the probe's path: json + one O_APPEND
  write) and the monitor's json-free `die` record, over 5000 calls each.

Nothing here asserts a time.
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
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PORTIQUE = str(Path(sys.executable).parent / "portique")
BUSYBOX = "/bin/busybox"


def _image(tmp: Path, env: dict[str, str]) -> None:
    root = tmp / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for name in ("sh", "true"):
        os.symlink("busybox", root / "bin" / name)
    tar_path = tmp / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root / "bin", arcname="bin")
    subprocess.run([PORTIQUE, "import", str(tar_path), "busybox:latest"], env=env, check=True,
                   capture_output=True)  # fmt: skip


def _micro() -> None:
    from portique.engine import eventlog, events

    d = tempfile.mkdtemp(prefix="pq-bench-events-")
    try:
        n = 5000
        attrs = {"image": "busybox", "name": "web"}
        t = timeit.timeit(lambda: events.record(d, "container", "start", "a" * 64, attrs), number=n)
        print(f"events.record (CLI, probe): {t / n * 1e6:.1f} us per event")
        text = '{"image":"busybox","name":"web"}'

        def die() -> None:
            line = eventlog.container_line("a" * 64, "die", text, time.time_ns(), exitCode="0")
            eventlog.append_line(d, line)

        t = timeit.timeit(die, number=n)
        print(f"monitor's die record (no json): {t / n * 1e6:.1f} us per event")
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="1700a87", help="a revision without events")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--network", default="none")
    args = ap.parse_args()
    _micro()
    with tempfile.TemporaryDirectory(prefix="pq-bench-events-") as tmp_s:
        tmp = Path(tmp_s)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.base, "src"],
                                 check=True, capture_output=True).stdout  # fmt: skip
        base = tmp / "base"
        base.mkdir()
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        env = dict(os.environ, PORTIQUE_ROOT=str(tmp / "root"), PORTIQUE_RUNROOT=str(tmp / "run"))
        _image(tmp, env)
        variants = {"before": dict(env, PYTHONPATH=str(base / "src")), "after": env}
        times: dict[str, list[float]] = {k: [] for k in variants}
        argv = [PORTIQUE, "run", "--rm", "--network", args.network, "busybox", "true"]
        for i in range(args.warmup + args.runs):
            for name, e in variants.items():
                t = time.perf_counter()
                subprocess.run(argv, env=e, check=True)
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - t)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        print(f"run --rm --network {args.network} busybox true, median of {args.runs}:")
        for k, v in med.items():
            print(f"  {k:6s} {v:7.1f} ms")
        print(f"  after/before {med['after'] / med['before']:.3f}"
              f" ({med['after'] - med['before']:+.1f} ms)")  # fmt: skip
        subprocess.run(["rm", "-rf", str(tmp / "run")], check=False)


if __name__ == "__main__":
    main()
