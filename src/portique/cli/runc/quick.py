"""`portique-runtime`'s entry point, with a fast path for `state`.

containerd's shim and podman's conmon call `state` more than any other verb,
and the full CLI imports the runtime library (~50 modules, enum and ctypes
among them) before it reads one file. Here, `[--root R] [--log L]
[--log-format text|json] state ID` (nothing else) is answered with what the
interpreter has already loaded plus the C half of `json` (`_json`: no `re`):
state.json read, the status derived from the facts exactly as
Runtime._refresh does (init pid + start time, the freezer, the exec fifo),
and the document printed as `json.dumps(indent=2)` would.

Anything off the common case (another verb or flag, a missing or unreadable
state, a systemd cgroup path, a freezer not where the plain layouts put it,
a value this printer does not handle) returns None and the full CLI
(main.py) runs, which says what went wrong in its own words. So the fast path
only ever prints what the full path would; tests/integration/runtime_cli
compares the two.
"""

from __future__ import annotations

import os
import sys

# The same as runtime/state.py's (a unit test checks): not imported, since
# that module's enum and pathlib are what this path exists to skip.
OCI_VERSION = "1.2.0"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
DEFAULT_ROOT = "/run/portique-runtime"
CGROUP_ROOT = "/sys/fs/cgroup"
_MAX_STATE = 4 << 20
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def state_argv(argv: list[str]) -> tuple[str, str] | None:
    """(root, id) when `argv` is a plain `state ID` call, else None (also
    for an ordinary user without --root: its default root is the full CLI's
    to find, cli/runc/main.default_root)."""
    root = DEFAULT_ROOT if os.geteuid() == 0 else ""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, val = argv[i].partition("=")
        if name.startswith("-") and not name.startswith("--"):
            name = "-" + name
        if name not in ("--root", "--log", "--log-format"):
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            val = argv[i + 1]
            i += 1
        if name == "--root":
            root = val or DEFAULT_ROOT
        elif name == "--log-format" and val not in ("text", "json"):
            return None
        i += 1
    rest = argv[i:]
    if len(rest) != 2 or rest[0] != "state" or not root:
        return None
    cid = rest[1]
    if not (0 < len(cid) <= 1024 and cid not in (".", "..") and cid[0] != "-"):
        return None
    if not cid.isascii() or not _ID_CHARS.issuperset(cid):
        return None
    return root, cid


def _loads(text: str) -> object:
    import _json

    class _Ctx:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = None
        memo: dict[str, str] = {}

    obj, end = _json.make_scanner(_Ctx())(text, 0)  # type: ignore[arg-type]
    if end != len(text):
        raise ValueError("trailing data")
    return obj


def _is_alive(pid: int, start_time: int) -> bool:
    """procfs.is_alive: exists, not a zombie, started at `start_time` (0: any)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = raw[raw.rfind(b")") + 2 :].split()
    state, started = fields[0].decode(), int(fields[19])
    if state in ("Z", "X"):
        return False
    return not start_time or started == start_time


def _cgroup_dir(cgroups_path: object, cid: str) -> str | None:
    """The container's cgroup path as cgroups.resolve_path gives it, for the
    plain cases only (None: let the full CLI decide)."""
    if cgroups_path is None or cgroups_path == "":
        return f"/portique/{cid}"
    if not isinstance(cgroups_path, str) or ":" in cgroups_path or "\0" in cgroups_path:
        return None
    parts = [p for p in cgroups_path.split("/") if p]
    if not parts or len(parts) > 32 or cgroups_path.startswith("//"):
        return None
    if any(p in (".", "..") for p in parts):
        return None
    if not cgroups_path.startswith("/"):
        parts.insert(0, "portique")
    return "/" + "/".join(parts)


def _frozen(cgroups_path: object, cid: str) -> bool | None:
    """Whether the freezer holds the container; None: not a layout handled here."""
    path = _cgroup_dir(cgroups_path, cid)
    if path is None:
        return None
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):  # unified (v2)
        try:
            with open(f"{CGROUP_ROOT}{path}/cgroup.events", "rb") as f:
                for line in f.read().splitlines():
                    key, _, val = line.partition(b" ")
                    if key == b"frozen":
                        return val.strip() == b"1"
        except FileNotFoundError:
            return False
        return None
    freezer = f"{CGROUP_ROOT}/freezer"
    if not os.path.isdir(freezer):
        return None
    try:
        with open(f"{freezer}{path}/freezer.state", "rb") as f:
            return f.read().strip() == b"FROZEN"
    except FileNotFoundError:
        return False  # as V1Manager.is_frozen: no freezer dir, not frozen


def _plain_path(value: object) -> str | None:
    """`value` when str(Path(value)) is `value` itself (an absolute normal path)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return None
    return value if os.path.normpath(value) == value else None


def runc_state(root: str, cid: str) -> str | None:
    """The text `state ID` prints, or None to let the full CLI answer."""
    try:
        fd = os.open(f"{root}/{cid}/{STATE_FILE}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _MAX_STATE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_STATE:
        return None
    try:
        obj = _loads(data.decode())
    except (ValueError, UnicodeDecodeError, StopIteration, SystemError):
        # _json's scanner raises json.decoder's error, which is not imported
        # here: a SystemError. The full CLI reads it again and words it.
        return None
    if not isinstance(obj, dict):
        return None
    pid, start, stored = obj.get("pid"), obj.get("start_time", 0), obj.get("status")
    bundle, rootfs = _plain_path(obj.get("bundle")), _plain_path(obj.get("rootfs"))
    sid, created, owner = obj.get("id"), obj.get("created"), obj.get("owner", "")
    annotations = obj.get("annotations") or {}
    if not (
        type(pid) is int
        and type(start) is int
        and stored in ("creating", "created", "running", "stopped", "paused")
        and bundle is not None
        and rootfs is not None
        and isinstance(sid, str)
        and isinstance(created, str)
        and isinstance(owner, str)
        and isinstance(annotations, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
    ):
        return None
    try:
        alive = pid > 0 and _is_alive(pid, start)
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    if not alive:
        status = "stopped"
    elif stored == "creating":
        status = "creating"
    else:
        try:
            frozen = _frozen(obj.get("cgroups_path"), sid)
        except (OSError, ValueError):
            frozen = False  # as Runtime._refresh: an unreadable freezer is not frozen
        if frozen is None:
            return None
        if frozen:
            status = "paused"
        elif os.path.lexists(f"{root}/{cid}/{EXEC_FIFO}"):
            status = "created"
        else:
            status = "running"
    doc: dict[str, object] = {
        "ociVersion": OCI_VERSION,
        "id": sid,
        "pid": pid if status != "stopped" else 0,
        "status": status,
        "bundle": bundle,
        "rootfs": rootfs,
        "created": created,
        "owner": owner,
    }
    if annotations:
        doc["annotations"] = annotations
    return dumps_indent2(doc)


def dumps_indent2(doc: dict[str, object]) -> str:
    """json.dumps(doc, indent=2) for a dict of str, int and a dict of str."""
    from _json import encode_basestring_ascii as q

    lines = []
    for key, val in doc.items():
        if isinstance(val, dict):
            inner = ",\n".join(f"    {q(k)}: {q(v)}" for k, v in val.items())
            text = "{\n" + inner + "\n  }" if val else "{}"
        elif isinstance(val, bool) or not isinstance(val, (str, int)):
            raise TypeError(f"{key}: {type(val).__name__}")
        else:
            text = q(val) if isinstance(val, str) else str(val)
        lines.append(f"  {q(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}"


def entry() -> None:
    """The console script: the fast `state`, else the full CLI (main.entry)."""
    args = state_argv(sys.argv[1:])
    if args is not None:
        text = runc_state(*args)
        if text is not None:
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except (OSError, ValueError):
                os._exit(0)  # stdout went away: as the full CLI, say nothing more
            os._exit(0)
    from portique.cli.runc.main import entry as full

    full()


__all__ = ["dumps_indent2", "entry", "runc_state", "state_argv"]
