"""`explain`: what isolates a running container, read from the kernel.

    report = explain_container(eng, "web")             # portique explain web
    report = explain_runtime(Path("/run/portique-runtime"), "c1")   # portique-runtime explain c1
    to_json(report)                                    # the documented JSON (docs/explain.md)

Both find the container's first process through the runtime library's state
(its pid and start time, checked against /proc), then read every fact from
the kernel (gather.py) and derive the verdict (verdict.py). Rendering is the
faces' business (cli/explain_text.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.engine.explain.model import Report, to_json

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.runtime.state import State

__all__ = ["Report", "explain_container", "explain_pid", "explain_runtime", "to_json"]


def explain_pid(
    pid: int,
    *,
    container_id: str,
    name: str,
    runtime: str,
    status: str,
    start_time: int | None = None,
    config: dict[str, Any] | None = None,
    engine_root: Path | None = None,
) -> Report:
    """The report for the container whose first process is host pid `pid`.

    `config` (its config.json) is used for one thing only: a seccomp program
    to probe with if the kernel will not give out the installed one.
    """
    from portique.engine.explain import gather
    from portique.engine.explain import model as m
    from portique.engine.explain.verdict import host_grantable, weakenings
    from portique.runtime.cgroups.limits import read_facts

    spec_seccomp = None
    if config and isinstance(config.get("linux"), dict) and config["linux"].get("seccomp"):
        from portique.oci.seccomp import parse_seccomp

        spec_seccomp = parse_seccomp(config["linux"]["seccomp"])
    ref, note = gather.reference_pid()
    cgroup = read_facts(pid)
    ns = gather.namespaces(pid, ref)
    priv = gather.privileges(
        pid,
        ns,
        cgroup,
        start_time=start_time,
        frozen=cgroup.frozen or status == "paused",
        spec_seccomp=spec_seccomp,
    )
    fs = gather.filesystem(pid, engine_root)
    res = gather.resources(pid, cgroup)
    report = Report(
        target=m.Target(container_id, name, runtime, status, pid, ref, note),
        kernel=gather.kernel(pid),
        namespaces=ns,
        processes=gather.processes(pid, ns, cgroup),
        filesystem=fs,
        resources=res,
        privileges=priv,
        network=gather.network(pid, ns),
    )
    verdict = weakenings(
        (ns, fs, res, priv), pid=pid, grantable=host_grantable(), stat_in_root=gather.stat_in_root
    )
    from dataclasses import replace

    return replace(report, verdict=verdict)


def _check_running(state: State, what: str) -> None:
    from portique.errors import InvalidState
    from portique.linux import proc as procfs

    if state.status.value == "created":
        # Its process is still the runtime's, waiting to exec: it has not
        # taken the container's credentials, capabilities or filter yet.
        raise InvalidState(
            f"container {what} is created but not started: its process has not taken "
            "its final privileges yet",
            hint="start it first",
        )
    if state.status.value not in ("running", "paused") or not procfs.is_alive(
        state.pid, state.start_time or None
    ):
        raise InvalidState(
            f"container {what} is not running: explain reads a running container's facts "
            "from the kernel",
            hint="start it first",
        )


def explain_container(eng: Engine, ref: str) -> Report:
    from portique.engine import containers
    from portique.errors import InvalidState, NotFound

    row = containers.get(eng, ref)
    try:
        from portique.engine.foreign_runtime import refuse_foreign

        refuse_foreign(eng.paths(row.id), "explain")
        state = eng.runtime().state(row.id)
    except NotFound:
        raise InvalidState(
            f"container {ref} is not running: explain reads a running container's facts "
            "from the kernel",
            hint=f"start it first: portique start {ref}",
        ) from None
    _check_running(state, ref)
    return explain_pid(
        state.pid,
        container_id=row.id,
        name=row.name,
        runtime="portique",
        status=state.status.value,
        start_time=state.start_time or None,
        config=state.config,
        engine_root=eng.root,
    )


def explain_runtime(state_root: Path, container_id: str) -> Report:
    from portique.runtime import Runtime

    state = Runtime(state_root).state(container_id)
    _check_running(state, container_id)
    return explain_pid(
        state.pid,
        container_id=state.id,
        name=state.id,
        runtime="portique-runtime",
        status=state.status.value,
        start_time=state.start_time or None,
        config=state.config,
    )
