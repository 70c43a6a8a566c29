"""`run --runtime runc|crun|PATH`: a container run by another OCI runtime's CLI.

The engine drives its own runtime library in-process (`portique.runtime`);
a container created with `--runtime` is driven through that runtime's
command line instead, with the same calls the engine makes of the library:
create (the container's stdio fds, or a console socket for `-t`), start,
state, kill, pause, resume, delete. Its state lives under
`<runroot>/oci-runtime` (the runtime's `--root`). `exec` into it is refused
with one line (the engine's exec hands the library a typed Process; no
process.json is written for another runtime).

`open_for(paths)` picks the runtime of a container: the marker file
`<runroot>/containers/<id>/oci-runtime` (written before create, holding the
binary's path) names a foreign one; without it, the library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from portique.engine.paths import ContainerPaths
from portique.errors import NotFound, PortiqueError, Unsupported
from portique.oci.value import value

# json and subprocess are imported where used: every start and stop calls
# open_for, and only containers of another runtime need them.
MARKER = "oci-runtime"
TIMEOUT = 60.0


@value
class ForeignState:
    """What the engine reads of a runtime's `state`."""

    id: str
    pid: int
    status: str
    bundle: str = ""


def marker(paths: ContainerPaths) -> Path:
    return paths.run_dir / MARKER


def foreign_binary(paths: ContainerPaths) -> str:
    try:
        return marker(paths).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def mark(paths: ContainerPaths, binary: str) -> None:
    """Record (or, with "", clear) the runtime a container's next create uses."""
    from portique.fileio import atomic_write

    if binary:
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(marker(paths), binary.encode(), 0o600, fsync=False)
    else:
        marker(paths).unlink(missing_ok=True)


class ForeignRuntime:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.name = os.path.basename(binary)

    def _argv(self, *args: str, log: Path | None = None) -> list[str]:
        argv = [self.binary, "--root", str(self.root)]
        if log is not None:
            argv += ["--log", str(log), "--log-format", "json"]
        return [*argv, *args]

    def _call(self, *args: str) -> str:
        import subprocess

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            p = subprocess.run(
                self._argv(*args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PortiqueError(f"{self.name} {args[0]}: {exc}") from None
        if p.returncode != 0:
            self._fail(args, p.stderr)
        return p.stdout

    def _fail(self, args: tuple[str, ...], text: str) -> None:
        import json

        last = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "")
        try:
            obj = json.loads(last)
            last = str(obj.get("msg", last)) if isinstance(obj, dict) else last
        except ValueError:
            pass
        cid = args[-1] if args else ""
        if "does not exist" in last or "not exist" in last:
            raise NotFound(f"container {cid[:12]} does not exist in {self.name}")
        raise PortiqueError(f"{self.name} {args[0]}: {last or 'failed'}")

    def create(
        self,
        container_id: str,
        bundle: Path,
        *,
        console_socket: Path | None = None,
        stdio: tuple[int, int, int] | None = None,
        **_: Any,
    ) -> ForeignState:
        import subprocess

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = bundle / f".{self.name}"
        work.mkdir(exist_ok=True, mode=0o700)
        pid_file, log = work / "pid", work / "log.json"
        pid_file.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        args = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            ins = stdio if stdio is not None else (null, null, null)
            # The container's stdio are the runtime's; its errors go to --log.
            p = subprocess.run(
                self._argv(*args, container_id, log=log),
                stdin=ins[0],
                stdout=ins[1],
                stderr=ins[2],
                timeout=TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PortiqueError(f"{self.name} create: {exc}") from None
        finally:
            os.close(null)
        if p.returncode != 0:
            try:
                text = log.read_text(encoding="utf-8", errors="replace")[-65536:]
            except OSError:
                text = ""
            errors = [ln for ln in text.splitlines() if '"error"' in ln] or text.splitlines()
            self._fail(("create",), errors[-1] if errors else "")
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            raise PortiqueError(f"{self.name} create: no pid file") from None
        return ForeignState(container_id, pid, "created", str(bundle))

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def state(self, container_id: str) -> ForeignState:
        import json

        obj = json.loads(self._call("state", container_id))
        return ForeignState(
            container_id, int(obj.get("pid") or 0), str(obj.get("status")), str(obj.get("bundle"))
        )

    def kill(self, container_id: str, sig: int, *, all: bool = False) -> None:
        self._call("kill", *(["--all"] if all else []), container_id, str(int(sig)))

    def pause(self, container_id: str) -> None:
        self._call("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._call("resume", container_id)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        try:
            self._call("delete", *(["--force"] if force else []), container_id)
        except NotFound:
            return

    def exec(self, container_id: str, *_: Any, **__: Any) -> int:
        raise Unsupported(
            f"exec: container {container_id[:12]} runs under {self.name}, and portique"
            " execs only into containers of its own runtime"
        )


def open_for(paths: ContainerPaths) -> Any:
    """The runtime that holds container `paths.id`: a foreign one when marked."""
    binary = foreign_binary(paths)
    if binary:
        return ForeignRuntime(binary, paths.run_root / MARKER)
    from portique.runtime import Runtime

    return Runtime(paths.runtime_root)


def refuse_foreign(paths: ContainerPaths, verb: str) -> None:
    """`stats`, `top`, `update`, `explain` read the library's state: one clear
    line for a container another runtime holds."""
    binary = foreign_binary(paths)
    if binary:
        raise Unsupported(
            f"{verb}: container {paths.id[:12]} runs under {os.path.basename(binary)};"
            f" {verb} works on containers of portique's own runtime"
        )
