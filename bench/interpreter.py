#!/usr/bin/env python3
"""What protecting the interpreter from containers costs (linux/selfexe.py).

Usage (as root, from the repository, after scripts/setup.sh):
    .venv/bin/python bench/interpreter.py [--rounds 20] [--before REV]

Times `portique-runtime run` of /bin/true from a busybox bundle (the lean
launcher) and `portique run --rm --network none busybox true`, started:

- from the venv's read-only interpreter (setup.sh's copy: the check only);
- from an unprotected copy of the same interpreter, in a venv of its own
  that shares this one's site-packages (the entry points re-execute from a
  sealed memfd copy);
- with --before REV: the tree at REV (`git archive`), on the read-only
  interpreter (REV has no check at all);
- runc, for scale (runtime row only).

Rounds interleave the variants (rotating order), so a load change on a
shared machine hits them all alike; the first two rounds are warm-up. Then
it starts five `run -d ... sleep` containers per variant and prints the PSS
of their monitors (a monitor runs from whatever its CLI ran from).
A private engine root and state roots in a temporary directory; nothing
else is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from run import busybox_tar  # noqa: E402
from runtime_start import make_bundle  # noqa: E402

from portique.cli.runc.launcher import import_roots  # noqa: E402
from portique.linux.selfexe import protection  # noqa: E402


def unprotected_venv(dest: Path) -> str:
    """A venv whose python3 is a plain (writable) copy, on this venv's packages."""
    (dest / "bin").mkdir(parents=True)
    shutil.copyfile(os.path.realpath(sys.executable), dest / "bin/python3")
    (dest / "bin/python3").chmod(0o755)
    shutil.copyfile(Path(sys.prefix) / "pyvenv.cfg", dest / "pyvenv.cfg")
    site = dest / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site.mkdir(parents=True)
    (site / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
    return str(dest / "bin/python3")


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def runtime_script(path: Path, python: str, src: str) -> str:
    roots = [src, *import_roots()[1:]]
    return write_script(
        path,
        f"#!{python} -IS\nimport sys\nsys.path += {roots!r}\n"
        "from portique.cli.runc.main import entry\nentry()\n",
    )


def cli_script(path: Path, python: str, src: str) -> str:
    # REV may predate entry(): fall back to main().
    return write_script(
        path,
        f"#!{python}\nimport sys\nsys.path.insert(0, {src!r})\n"
        "from portique.cli.docker import main as m\n"
        "sys.exit(getattr(m, 'entry', m.main)())\n",
    )


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def monitors_of(ids: list[str]) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if any(f"id={cid}\0" in cmdline for cid in ids):
            pids.append(int(pid))
    return pids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--before", help="also time the tree at this git revision")
    args = ap.parse_args()
    ro_python = str(Path(sys.prefix) / "bin/python3")
    if protection(ro_python) != "read-only":
        print(f"{ro_python} is not on a read-only mount: run scripts/setup.sh first")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-interp-"))
    run_root = f"/run/pq-bench-interp-{os.getpid()}"
    env = dict(os.environ, PORTIQUE_ROOT=str(tmp / "engine"), PORTIQUE_RUNROOT=run_root)
    try:
        src = str(REPO / "src")
        plain = unprotected_venv(tmp / "venv")
        variants = {
            "read-only interpreter": (ro_python, src),
            "sealed re-exec": (plain, src),
        }
        if args.before:
            subprocess.run(
                f"git -C {REPO} archive {args.before} src | tar -x -C {tmp}",
                shell=True,
                check=True,
            )
            (tmp / "before").mkdir()
            (tmp / "src").rename(tmp / "before/src")
            variants[f"before ({args.before})"] = (ro_python, str(tmp / "before/src"))
        bundle = make_bundle(tmp / "bundle")
        commands: dict[str, dict[str, list[str]]] = {"rt": {}, "pq": {}}
        for i, (name, (python, tree)) in enumerate(variants.items()):
            rt = runtime_script(tmp / f"rt{i}", python, tree)
            pq = cli_script(tmp / f"pq{i}", python, tree)
            commands["rt"][name] = [
                rt,
                "--root",
                str(tmp / f"st{i}"),
                "run",
                "-b",
                str(bundle),
                "b",
            ]
            commands["pq"][name] = [pq, "run", "--rm", "--network", "none", "busybox", "true"]
        commands["rt"]["runc"] = [
            "runc",
            "--root",
            str(tmp / "st-runc"),
            "run",
            "-b",
            str(bundle),
            "b",
        ]
        first_cli = next(iter(commands["pq"].values()))[0]
        tar = busybox_tar(tmp)
        subprocess.run([first_cli, "import", str(tar), "busybox:latest"], env=env, check=True)
        times: dict[tuple[str, str], list[float]] = {}
        names = list(commands["rt"])
        load = os.getloadavg()[0]
        for i in range(args.rounds + 2):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                for kind in ("rt", "pq"):
                    cmd = commands[kind].get(name)
                    if cmd is None:
                        continue
                    t = time.perf_counter()
                    subprocess.run(
                        cmd,
                        env=env,
                        check=True,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                    )
                    if i >= 2:
                        times.setdefault((kind, name), []).append(time.perf_counter() - t)
        print(f"{args.rounds} rounds, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
        for kind, title in (
            ("rt", "portique-runtime run /bin/true (lean launcher)"),
            ("pq", "portique run --rm --network none busybox true"),
        ):
            print(title)
            for name in names:
                v = times.get((kind, name))
                if v:
                    print(
                        f"  {name:28s} median {statistics.median(v) * 1000:6.1f} ms"
                        f"  min {min(v) * 1000:6.1f} ms"
                    )
        print("monitor PSS (5 containers per variant)")
        for name, cmd in commands["pq"].items():
            ids = [
                subprocess.run(
                    [cmd[0], "run", "-d", "--network", "none", "busybox", "sleep", "600"],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                for _ in range(5)
            ]
            pss = [pss_kib(pid) / 1024 for pid in monitors_of(ids)]
            print(f"  {name:28s} " + " ".join(f"{p:.2f}" for p in pss) + " MiB")
            subprocess.run([cmd[0], "rm", "-f", *ids], env=env, capture_output=True, check=False)
    finally:
        from portique.network.networks import Networks

        nets = Networks(tmp / "engine", run_root=Path(run_root))
        try:
            nets.destroy()
        finally:
            nets.close()
        subprocess.run(["rm", "-rf", run_root, str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
