"""One Dockerfile RUN step as a container: its OCI spec, and running it.

A RUN step executes whatever the Dockerfile says, so it is confined exactly
like a default `portique run` container: `step_spec` takes capabilities,
seccomp profile, masked and read-only paths, kernel filesystem mounts,
device rules and namespaces from runtime/confinement.py, the module
engine/config.py builds a container's from. What differs is what a build
needs: a writable overlay root, the image's user, env and working
directory, the hostname BuildKit uses, and no network unless `--network
host`.

`run_step` never hands the step an fd of ours: stdin is /dev/null, and
stdout and stderr share one pipe whose other end we copy into the build
output (as Docker's builder streams both), so a step cannot reach the
terminal `portique build` runs on, nor keep anything of ours after it ends.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from portique.runtime.confinement import NAMESPACES, Confinement

HOSTNAME = "buildkitsandbox"


def step_spec(
    *,
    rootfs: Path,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    user: Mapping[str, Any],
    network: str,
    confinement: Confinement,
    hosts: Path | None = None,
    shm_size: int = 0,
    rlimits: Sequence[Mapping[str, Any]] = (),
    memory: int = 0,
    memory_swap: int = 0,
) -> dict[str, Any]:
    """The config.json of a RUN step (`user`: OCI process.user). `hosts`: an
    /etc/hosts to bind (`build --add-host`); `shm_size`: /dev/shm's bytes;
    `rlimits`: OCI process.rlimits (`--ulimit`); `memory`, `memory_swap`: the
    step's limits (`-m`, `--memory-swap`: 0 unset, swap -1 unlimited)."""
    mounts = confinement.mounts()
    if shm_size:
        for m in mounts:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
                m["options"].append(f"size={shm_size}")
    if hosts is not None:
        mounts.append(
            {"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
             "options": ["rbind", "ro"]}
        )  # fmt: skip
    names = ("resolv.conf",) if hosts is not None else ("resolv.conf", "hosts")
    if network == "host":
        for name in names:
            host = Path("/etc") / name
            if host.exists():
                mounts.append(
                    {
                        "destination": f"/etc/{name}",
                        "type": "bind",
                        "source": str(host),
                        "options": ["rbind", "ro"],
                    }
                )
    namespaces = [{"type": t} for t in NAMESPACES]
    if network != "host":
        namespaces.append({"type": "network"})
    resources: dict[str, Any] = {"devices": confinement.device_rules()}
    if memory:
        # As `run -m`: unset swap is twice the memory, -1 unlimited.
        swap = -1 if memory_swap == -1 else (memory_swap or 2 * memory)
        resources["memory"] = {"limit": memory, "swap": swap}
    return {
        "ociVersion": "1.1.0",
        "process": {
            "terminal": False,
            "user": dict(user),
            "args": list(argv),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": cwd,
            "capabilities": confinement.process_capabilities(),
            "noNewPrivileges": confinement.no_new_privileges,
            **({"rlimits": [dict(r) for r in rlimits]} if rlimits else {}),
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": HOSTNAME,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "resources": resources,
            **confinement.linux_paths(),
        },
    }


def mount_points(spec: Mapping[str, Any]) -> frozenset[str]:
    """The step's mount destinations, relative to the root: what the runtime
    makes in the upper dir for them (/proc, /dev, /sys on a base without them,
    an /etc/hosts file to bind onto, ...) is not the step's content, and the
    layer writer leaves it out (snapshots.write_diff_tar's `skip`)."""
    out = set()
    for m in spec.get("mounts") or ():
        parts = [c for c in str(m.get("destination") or "").split("/") if c and c != "."]
        if parts and ".." not in parts:
            out.add("/".join(parts))
    return frozenset(out)


def run_step(run_root: Path, cid: str, bundle: Path, out: TextIO | None) -> int:
    """Run the bundle's container to its end; its output goes to `out` (None:
    dropped, as `build -q` does). Returns its exit status."""
    from portique.errors import PortiqueError
    from portique.runtime import Runtime

    rt = Runtime(run_root)
    null_in = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    if out is None:
        r, w = -1, os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    else:
        r, w = os.pipe2(os.O_CLOEXEC)
    fds = [null_in, r, w]

    def copy_output(_pid: int) -> None:
        # The container holds its own copies now: close ours, so the pipe
        # reaches EOF when the last process in the container is gone (the
        # init's death kills its whole pid namespace).
        os.close(w)
        fds.remove(w)
        if out is not None:
            _copy(r, out)

    try:
        if out is not None:
            out.flush()
        return int(rt.run(cid, bundle, stdio=(null_in, w, w), on_pid=copy_output))
    finally:
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        try:
            rt.delete(cid, force=True)
        except PortiqueError:
            pass


def _copy(r: int, out: TextIO) -> None:
    """Copy the pipe into `out` until EOF (UTF-8, undecodable bytes replaced)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while data := os.read(r, 65536):
        out.write(decoder.decode(data))
        out.flush()
    out.write(decoder.decode(b"", final=True))
    out.flush()
