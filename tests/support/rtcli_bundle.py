"""Bundles and a driver for the `portique-runtime` binary (tests of cli/runc)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from portique.runtime.default_spec import default_spec

# The installed console script when the venv has one, else the module.
_SCRIPT = Path(sys.executable).with_name("portique-runtime")
RUNTIME_CMD: list[str] = (
    [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "portique.cli.runc.main"]
)


def unique_id(prefix: str = "rtcli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_bundle(
    dest: Path,
    rootfs: Path,
    args: Sequence[str] = ("sleep", "60"),
    *,
    terminal: bool = False,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """A bundle at `dest` whose root is the shared (read-only) busybox `rootfs`."""
    dest.mkdir(parents=True, exist_ok=True)
    spec = default_spec()
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["process"]["args"] = list(args)
    spec["process"]["terminal"] = terminal
    if edit is not None:
        edit(spec)
    (dest / "config.json").write_text(json.dumps(spec, indent=2))
    return dest


class RuntimeCLI:
    """Runs portique-runtime with a private --root and a JSON --log."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log

    def argv(self, *args: str) -> list[str]:
        return [
            *RUNTIME_CMD,
            "--root",
            str(self.root),
            "--log",
            str(self.log),
            "--log-format",
            "json",
            *args,
        ]

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60,
        **kw: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run the binary; stdout/stderr go to files, not pipes: a created or
        detached container inherits them and would keep a pipe open."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                self.argv(*args), stdout=out, stderr=err, timeout=timeout, check=False, **kw
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(
                proc.args,
                proc.returncode,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"portique-runtime {' '.join(args)} exited {result.returncode}: "
                f"stdout={result.stdout!r} stderr={result.stderr!r}"
            )
        return result

    def state(self, cid: str) -> dict[str, Any]:
        out = self("state", cid).stdout
        obj: dict[str, Any] = json.loads(out)
        return obj

    def wait_status(self, cid: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(cid)
            if state["status"] == status or time.monotonic() > deadline:
                return state
            time.sleep(0.05)


def wait_pids(cli: RuntimeCLI, cid: str, count: int, timeout: float = 60.0) -> list[int]:
    """The container's pids once there are `count` of them (a freshly started
    init may not have forked its children yet)."""
    deadline = time.monotonic() + timeout
    while True:
        pids: list[int] = json.loads(cli("ps", "--format", "json", cid).stdout)
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def mount_points(*prefixes: Path | str) -> list[str]:
    """Mount points of this mount namespace, to compare before and after.

    Other test sessions may mount things elsewhere on the host meanwhile, so
    callers pass the trees a leak from the runtime would land in (the bundle
    and rootfs, the state root, /sys/fs/cgroup, ...).
    """
    with open("/proc/self/mountinfo") as f:
        points = sorted(line.split()[4] for line in f)
    if not prefixes:
        return points
    roots = [str(p).rstrip("/") for p in prefixes]
    return [p for p in points if any(p == r or p.startswith(r + "/") for r in roots)]


def portique_cgroups(container_id: str) -> list[Path]:
    """cgroup directories named after `container_id` under any portique/ parent."""
    found = []
    base = Path("/sys/fs/cgroup")
    for hierarchy in [base, *base.iterdir()] if base.is_dir() else []:
        candidate = hierarchy / "portique" / container_id
        if candidate.exists():
            found.append(candidate)
    return found


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def one_line_error(stderr: str) -> str:
    """Assert `stderr` is exactly one line (no traceback) and return it."""
    assert stderr.endswith("\n"), stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    return stderr.strip()


FD_LIST = re.compile(r"^[0-9 \n]*$")
