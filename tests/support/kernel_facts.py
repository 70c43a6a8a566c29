"""The kernel's answers, read by the tests themselves (no portique code), to
check `explain` against: /proc, the cgroup files, capsh, nft."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any


def status(pid: int | str) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = rest.strip()
    return out


def cap_names(mask_hex: str) -> set[str]:
    """capsh's decoding of a capability mask, as CAP_* names."""
    text = subprocess.run(
        ["capsh", f"--decode={mask_hex}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    names = text.partition("=")[2]
    return {n.upper() for n in names.split(",") if n}


def ns_inode(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def mountinfo(pid: int | str) -> list[dict[str, str]]:
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        f, g = pre.split(), post.split()
        out.append({"target": f[4], "root": f[3], "options": f[5], "fstype": g[0], "super": g[2]})
    return out


def cgroup_dir(pid: int | str, controller: str) -> Path:
    """The directory of `pid`'s cgroup for `controller` (v1) or its unified one (v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        return Path("/sys/fs/cgroup") / path.lstrip("/")
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    raise AssertionError(f"no {controller} cgroup for {pid}")


def cgroup_v2() -> bool:
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def nft_ruleset() -> str:
    return subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, check=True
    ).stdout


def weakening(report: dict[str, Any], wid: str) -> dict[str, Any]:
    """The verdict entry `wid` of an explain report (fails if it is missing)."""
    found: list[dict[str, Any]] = [w for w in report["verdict"] if w["id"] == wid]
    assert found, f"no {wid!r} in the verdict: {[w['id'] for w in report['verdict']]}"
    return found[0]
