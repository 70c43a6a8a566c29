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


def absent_targets(rootfs: Path, spec: Mapping[str, Any]) -> list[tuple[list[str], int]]:
    """The mount destinations of `spec` that the root lacks, which the runtime
    will create in the step's upper dir: (the destination's components, how
    many leading ones exist). Looked up one component at a time, never
    through a symlink of the image's (a destination behind one is left out:
    the runtime resolves it inside the root, elsewhere)."""
    out: list[tuple[list[str], int]] = []
    top = os.open(rootfs, _DIR)
    try:
        for m in spec.get("mounts") or ():
            parts = [c for c in str(m.get("destination") or "").split("/") if c and c != "."]
            if not parts or ".." in parts:
                continue
            have = _existing_prefix(top, parts)
            if have is not None and have < len(parts):
                out.append((parts, have))
    finally:
        os.close(top)
    return out


def _existing_prefix(top: int, parts: list[str]) -> int | None:
    """How many leading `parts` exist under `top` as plain directories (the
    last as anything); None when one of them is a symlink."""
    import stat

    fd = os.dup(top)
    try:
        for i, name in enumerate(parts):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return i
            if stat.S_ISLNK(st.st_mode):
                return None
            if i == len(parts) - 1:
                return len(parts)
            if not stat.S_ISDIR(st.st_mode):
                return None
            sub = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = sub
        return len(parts)
    finally:
        os.close(fd)


def drop_mount_targets(upper: Path, absent: list[tuple[list[str], int]]) -> None:
    """Remove from a step's upper dir the mount points the runtime made there
    (`absent_targets`, taken before the step): they are the runtime's, not the
    step's content, and Docker's layers do not carry them. Only what is still
    empty goes: an empty file, an empty directory, then each parent that the
    root lacked and is now empty; whatever the step wrote there stays."""
    top = os.open(upper, _DIR | os.O_NOFOLLOW)
    try:
        # Deepest first, so /dev/shm goes before /dev.
        for parts, have in sorted(absent, key=lambda a: -len(a[0])):
            _drop_empty_chain(top, parts, have)
    finally:
        os.close(top)


def _drop_empty_chain(top: int, parts: list[str], have: int) -> None:
    import contextlib
    import stat

    fds = [os.dup(top)]
    try:
        for name in parts[:-1]:
            try:
                fds.append(os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except OSError:
                return  # not made here (it was under a mount, or is no directory)
        for depth in range(len(parts) - 1, have - 1, -1):
            name, parent = parts[depth], fds[depth]
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size == 0 and depth == len(parts) - 1:
                os.unlink(name, dir_fd=parent)
            elif stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):  # not empty: the step's content
                    os.rmdir(name, dir_fd=parent)
                if _exists(parent, name):
                    return
            else:
                return
    finally:
        for fd in fds:
            os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


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
