"""`exec [flags] ID [COMMAND [ARG...]]`: run another process in a container.

The process comes from `--process FILE` (an OCI process object, "-" for
stdin) or, as runc builds it, from the container's config.json process with
the command line's args, env, cwd, user, caps and tty laid over it.
"""

from __future__ import annotations

import os
import sys

from portique import jsonc
from portique.cli.runc.commands.create import checked_pid_file
from portique.cli.runc.fastargs import (
    APPEND,
    APPEND_INT,
    INT,
    REMAINDER,
    TEXT,
    Option,
    Positional,
    add_options,
    add_positionals,
    flag,
)
from portique.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from portique.cli.runc.context import Context
    from portique.oci.runtime import Process
    from portique.runtime import Runtime

# A process file is small; anything bigger is not one.
_MAX_PROCESS_JSON = 4 << 20

OPTIONS = (
    Option("--process", "-p", kind=TEXT, default="", help="path to a process.json"),
    flag("--detach", "-d", help="do not wait for it"),
    Option("--pid-file", kind=TEXT, default="", help="write its pid to this file"),
    flag("--tty", "-t", default=None, help="allocate a pty"),
    Option("--console-socket", kind=TEXT, default="", help="unix socket to send the pty master to"),
    Option("--env", "-e", kind=APPEND, default=[], help="KEY=VALUE to add"),
    Option("--cwd", kind=TEXT, default="", help="working directory in the container"),
    Option("--user", "-u", kind=TEXT, default="", help="UID[:GID]"),
    Option("--additional-gids", "-g", kind=APPEND_INT, default=[], help="extra gid"),
    Option("--cap", "-c", kind=APPEND, default=[], help="capability to add"),
    flag("--no-new-privs", default=None, help="set no_new_privileges"),
    Option("--preserve-fds", kind=INT, default=0, help="pass fds 3..3+N-1 on"),
    Option("--apparmor", kind=TEXT, default="", help="refused: no AppArmor support"),
    Option("--process-label", kind=TEXT, default="", help="refused: no SELinux support"),
    Option("--cgroup", kind=APPEND, default=[], help="refused: no sub-cgroups"),
    flag("--ignore-paused", help="refused: a frozen process cannot start"),
)
POSITIONALS = (
    Positional("container_id", metavar="container-id"),
    Positional("command", REMAINDER),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    add_positionals(parser, POSITIONALS)


def _read_json(path: str) -> Any:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(_MAX_PROCESS_JSON + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(_MAX_PROCESS_JSON + 1)
    except FileNotFoundError:
        raise InvalidArgument(f"process file {path} does not exist") from None
    if len(data) > _MAX_PROCESS_JSON:
        raise InvalidArgument(f"process file {path} is larger than {_MAX_PROCESS_JSON} bytes")
    try:
        return jsonc.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"process file {path} is not valid JSON: {exc}") from None


def parse_user(text: str) -> tuple[int, int | None]:
    uid_text, _, gid_text = text.partition(":")
    try:
        uid = int(uid_text)
        gid = int(gid_text) if gid_text else None
    except ValueError:
        raise InvalidArgument(f"invalid --user {text!r}: want UID[:GID] as numbers") from None
    if uid < 0 or (gid is not None and gid < 0):
        raise InvalidArgument(f"invalid --user {text!r}: ids must not be negative")
    return uid, gid


def build_process(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """The process object runc's exec builds from the config's process and flags."""
    proc: dict[str, Any] = jsonc.loads(jsonc.dumps(base))  # a deep copy of plain JSON
    if not args.command:
        raise InvalidArgument("exec needs a command or --process")
    proc["args"] = list(args.command)
    if args.cwd:
        proc["cwd"] = args.cwd
    if args.env:
        proc["env"] = [*proc.get("env", []), *args.env]
    proc["terminal"] = bool(args.tty)
    if args.no_new_privs is not None:
        proc["noNewPrivileges"] = True
    if args.user:
        uid, gid = parse_user(args.user)
        user = dict(proc.get("user") or {})
        user["uid"] = uid
        if gid is not None:
            user["gid"] = gid
        user.setdefault("gid", 0)
        proc["user"] = user
    if args.additional_gids:
        user = dict(proc.get("user") or {"uid": 0, "gid": 0})
        user["additionalGids"] = list(args.additional_gids)
        proc["user"] = user
    if args.cap:
        caps = dict(proc.get("capabilities") or {})
        for kind in ("bounding", "effective", "permitted"):
            have = list(caps.get(kind) or [])
            caps[kind] = have + [c for c in args.cap if c not in have]
        proc["capabilities"] = caps
    return proc


def process_object(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    if args.process:
        obj = _read_json(args.process)
        if not isinstance(obj, dict):
            raise InvalidArgument(f"process file {args.process} must hold a JSON object")
        # As runc: a process file is taken as it is, the other flags do not apply.
        return obj
    state = ctx.runtime().state(args.container_id)
    config = _read_json(os.path.join(state.bundle, "config.json"))
    base = config.get("process") if isinstance(config, dict) else None
    if not isinstance(base, dict):
        raise InvalidArgument(f"{state.bundle}/config.json has no process object")
    return build_process(args, base)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from portique.oci.runtime import parse_process

    if args.apparmor or args.process_label:
        raise InvalidArgument("apparmor and selinux labels are not supported by portique-runtime")
    if args.cgroup:
        raise InvalidArgument("exec --cgroup (a sub-cgroup) is not supported by portique-runtime")
    if args.ignore_paused:
        raise InvalidArgument("exec --ignore-paused is not supported: resume the container first")
    if args.preserve_fds < 0:
        raise InvalidArgument(f"--preserve-fds must not be negative: {args.preserve_fds}")
    obj = process_object(args, ctx)
    process = parse_process(obj, field="process")
    console = os.path.abspath(args.console_socket) if args.console_socket else None
    pid_file = checked_pid_file(args.pid_file)
    rt = ctx.runtime()
    kwargs: dict[str, Any] = {
        "detach": args.detach,
        "pid_file": pid_file,
        "preserve_fds": args.preserve_fds,
    }
    if args.detach:
        rt.exec(args.container_id, process, console_socket=console, **kwargs)
        return 0
    # Foreground: signals sent to us go to the process (runc forwards them
    # too), once the library reports its pid.
    from portique.cli.runc.forward import forward_signals

    started: list[int] = []
    kwargs["on_pid"] = started.append
    if pid_file is not None:
        # An old pid file would name a process that is not ours.
        try:
            os.unlink(pid_file)
        except FileNotFoundError:
            pass

    def send(sig: int) -> None:
        if not started:
            raise ProcessLookupError("not started yet")  # forward_signals retries
        os.kill(started[0], sig)

    with forward_signals(send):
        if console is not None or not obj.get("terminal"):
            status: int = rt.exec(args.container_id, process, console_socket=console, **kwargs)
            return status
        return _exec_with_relay(args.container_id, process, rt, kwargs)


def _exec_with_relay(cid: str, process: Process, rt: Runtime, kwargs: dict[str, Any]) -> int:
    """A foreground `exec -t` without --console-socket: relay the pty here."""
    from portique.cli.runc.console import console_listener, reap, spawn_relay
    from portique.termio import raw_terminal

    with console_listener() as (path, listener), raw_terminal(0):
        helper = spawn_relay(listener)
        listener.close()
        try:
            status: int = rt.exec(cid, process, console_socket=path, **kwargs)
        except BaseException:
            reap(helper, kill=True)
            raise
        reap(helper)
    return status
