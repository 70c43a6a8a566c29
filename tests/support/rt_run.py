"""Running a busybox container through the runtime library and capturing its output."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from support.rt_bundle import make_bundle

_ids = itertools.count()


def new_id(prefix: str = "rt") -> str:
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


class Outputs:
    """A file standing in for the container's stdout+stderr."""

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / f"out-{next(_ids)}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)

    @property
    def stdio(self) -> tuple[int, int, int]:
        return (self.null, self.fd, self.fd)

    def text(self) -> str:
        return self.path.read_text()

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.null)


def run_container(
    rt: Any, tmp: Path, rootfs: Path, config: dict[str, Any], *, copy_rootfs: bool = False
) -> tuple[int, str]:
    """`rt.run` the config to completion; (exit status, stdout+stderr)."""
    bundle = make_bundle(tmp, rootfs, config, copy_rootfs=copy_rootfs)
    out = Outputs(tmp)
    try:
        code = rt.run(new_id(), bundle, stdio=out.stdio)
    finally:
        out.close()
    return code, out.text()


def kv(text: str) -> dict[str, str]:
    """Lines `key=value` of a probe's output as a dict."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out
