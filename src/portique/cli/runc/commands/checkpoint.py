"""`checkpoint` and `restore`: refused, in one line that says why.

Both go through CRIU in runc. portique-runtime does not drive CRIU yet, and
Debian 12's criu (3.17) cannot even start on recent kernels (`criu check`
fails reading the vDSO), so the refusal names what `criu check` (with
`--criu`) says on this host. Every flag runc 1.1 takes is parsed, so a
caller's command line is never the reason for the refusal.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess

from portique.cli.runc.context import Context
from portique.errors import Unsupported

_CHECK_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # runc 1.1's flags, checkpoint's and restore's (they share most).
    for name in ("--image-path", "--work-path", "--parent-path", "--page-server", "--empty-ns"):
        parser.add_argument(name, default="")
    parser.add_argument("--manage-cgroups-mode", default="")
    parser.add_argument("--status-fd", type=int, default=-1)
    for name in (
        "--leave-running",
        "--tcp-established",
        "--ext-unix-sk",
        "--shell-job",
        "--lazy-pages",
        "--file-locks",
        "--pre-dump",
        "--auto-dedup",
        "--no-subreaper",
        "--no-pivot",
    ):
        parser.add_argument(name, action="store_true")
    parser.add_argument("--console-socket", default="")
    parser.add_argument("--bundle", "-b", default="")
    parser.add_argument("--detach", "-d", action="store_true")
    parser.add_argument("--pid-file", default="")
    parser.add_argument("--lsm-profile", default="")
    parser.add_argument("--lsm-mount-context", default="")
    parser.add_argument("container_id", metavar="container-id")


def criu_problem(criu: str) -> str:
    """Why CRIU cannot serve here: missing, or the first error of `criu check`."""
    path = shutil.which(criu)
    if path is None:
        return f"{criu} is not installed"
    try:
        proc = subprocess.run(
            [path, "check"], capture_output=True, text=True, timeout=_CHECK_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`{criu} check` did not run: {e}"
    if proc.returncode == 0:
        return ""
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    first = lines[0] if lines else f"exit status {proc.returncode}"
    # "Error (criu/vdso.c:381): vdso: ..." -> "vdso: ..."
    if first.startswith("Error (") and "): " in first:
        first = first.split("): ", 1)[1]
    return f"`{criu} check` fails on this kernel: {first}"


def run(args: argparse.Namespace, ctx: Context) -> int:
    problem = criu_problem(ctx.criu)
    why = problem or "portique-runtime does not drive CRIU"
    raise Unsupported(f"{args.verb} is not supported: {why}")
