"""Build the confinement probe (confprobe.c) as a static binary for busybox images."""

from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("confprobe.c")


def build_confprobe(dest: Path) -> Path:
    """Compile the probe into `dest` (a static binary: the test images have no libc)."""
    out = dest / "confprobe"
    subprocess.run(
        ["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(out), str(SOURCE)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out
