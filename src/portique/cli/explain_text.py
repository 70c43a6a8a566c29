"""The learner's view of an explain report (both faces print it).

Each fact is two lines: what it is, then where it was read and what it
means. Tables (processes, mounts, system calls) say once, in their heading,
where their rows come from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portique.engine.explain import model as m

_NS_MEANING: dict[str, tuple[str, str]] = {
    # kind: (own, shared)
    "cgroup": ("its /proc/self/cgroup starts at its own cgroup", "it sees the host's cgroup paths"),
    "ipc": (
        "its own System V IPC objects and message queues",
        "the host's shared memory segments and message queues",
    ),
    "mnt": (
        "its own mount table: it sees its image, not the host's files",
        "the host's mount table and files",
    ),
    "net": (
        "its own interfaces, addresses, routes, ports and firewall",
        "the host's network: every interface, port and 127.0.0.1",
    ),
    "pid": (
        "its own process numbers: it sees only its processes, the first is PID 1",
        "the host's process list: it sees (and may signal) every process",
    ),
    "time": (
        "its own offsets of the monotonic and boot clocks",
        "the host's clocks (as with Docker, which makes no time namespace)",
    ),
    "user": (
        "its own uids and gids: root inside maps to another uid outside",
        "the host's uids and gids: uid 0 inside is uid 0 on the host",
    ),
    "uts": ("its own hostname and domain name", "the host's hostname"),
}

_CAP_SETS: dict[str, str] = {
    "effective": "what the kernel checks right now",
    "permitted": "what the process may make effective",
    "inheritable": "what may pass to programs it executes (with file capabilities)",
    "bounding": "the ceiling: no exec can ever gain more",
    "ambient": "kept across exec of ordinary programs",
}

_LIMIT_MEANING: dict[str, str] = {
    "memory.max": "beyond it the kernel reclaims, then the OOM killer kills in the container",
    "memory+swap.max": "memory plus swap together (v1); equal to memory.max: no swap",
    "memory.swap.max": "swap the container may use on top of memory.max",
    "cpu.quota_us": "CPU time allowed per period, in microseconds (-1/max: no cap)",
    "cpu.period_us": "the accounting period of the quota",
    "cpu.shares": "relative weight under contention (1024 is the default)",
    "cpu.weight": "relative weight under contention (100 is the default)",
    "pids.max": "fork() fails with EAGAIN beyond this many tasks: a fork bomb stops here",
    "io.weight": "relative share of disk time",
    "io.max": "per-device bandwidth and IOPS caps",
    "memory.current": "memory charged to the container now (page cache included)",
    "memory.peak": "the most it ever used",
    "memory.oom_kills": "processes the OOM killer has killed in this cgroup",
    "pids.current": "tasks (processes and threads) in the cgroup now",
    "cpu.usage_ns": "CPU time used so far",
}


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str, note: str = "") -> None:
        if self.lines:
            self.lines.append("")
        self.lines.append(title.upper() + (f" ({note})" if note else ""))

    def fact(self, label: str, value: str, source: str, meaning: str) -> None:
        self.lines.append(f"  {label + ':':<16} {value}")
        self.lines.append(f"  {'':<16} ({source}) {meaning}".rstrip())

    def note(self, text: str, indent: int = 2) -> None:
        self.lines.append(" " * indent + text)

    def table(self, rows: list[list[str]], indent: int = 4) -> None:
        if not rows:
            return
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)] + [r[-1]]
            self.lines.append(" " * indent + "  ".join(cells).rstrip())


def _size(n: int | None) -> str:
    if n is None:
        return "unlimited"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << (shift - 3)) == 0:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"


def format_report(report: m.Report, fmt: str) -> str:
    """`--format text` (render) or `--format json` (the documented document)."""
    if fmt == "json":
        import json

        from portique.engine.explain.model import to_json

        return json.dumps(to_json(report), indent=2) + "\n"
    return render(report)


def render(r: m.Report) -> str:
    out = _Out()
    t = r.target
    out.note(
        f"{t.runtime} explain: container {t.id[:12]} ({t.name}), {t.status}, "
        f"first process {t.pid} on the host",
        indent=0,
    )
    out.note("Every fact below was read from the kernel now, not from portique's records.", 0)
    _kernel(out, r)
    _namespaces(out, r)
    _processes(out, r)
    _filesystem(out, r)
    _resources(out, r)
    _privileges(out, r)
    _network(out, r)
    _verdict(out, r)
    return "\n".join(out.lines) + "\n"


def _kernel(out: _Out, r: m.Report) -> None:
    k = r.kernel
    out.section("kernel")
    out.fact(
        "release",
        k.release,
        k.release_source,
        "a container has no kernel of its own: this is the host's",
    )
    inside = k.container_boot_id or "unreadable from inside"
    same = "the same inside: one kernel, booted once" if k.same_kernel else "DIFFERENT inside"
    out.fact("boot id", k.boot_id, k.boot_id_source, "drawn at random by the kernel at boot")
    out.fact("boot id inside", inside, k.container_boot_id_source, same)


def _namespaces(out: _Out, r: m.Report) -> None:
    ns = r.namespaces
    out.section("namespaces", f"compared with {r.target.reference_note}")
    for n in ns.items:
        own, shared = _NS_MEANING[n.type]
        value = (
            f"shared with the host (inode {n.inode})"
            if n.shared
            else f"own (inode {n.inode}; the host's is {n.host_inode})"
        )
        out.fact(n.type, value, n.source, shared if n.shared else own)
    for kind, maps, src in (
        ("uid", ns.uid_map, ns.uid_map_source),
        ("gid", ns.gid_map, ns.gid_map_source),
    ):
        text = "; ".join(
            f"{x.inside}-{x.inside + x.count - 1} -> {x.outside}-{x.outside + x.count - 1}"
            for x in maps
        )
        identity = all(x.inside == x.outside for x in maps)
        meaning = (
            f"every {kind} maps to itself: no remapping"
            if identity
            else f"{kind}s inside are other {kind}s on the host"
        )
        out.fact(f"{kind} map", text or "none", src, meaning)


def _processes(out: _Out, r: m.Report) -> None:
    p = r.processes
    out.section("processes")
    if p.pid_ns_shared:
        out.note(f"it shares the host's pid namespace: it can see all {p.visible} processes")
        out.note(f"of the host; its own (from {p.source}):")
    else:
        out.note(f"it sees {p.visible} process(es); the host numbers them differently")
        out.note("(NSpid in /proc/PID/status: the number in each pid namespace, host first):")
    rows = [["PID inside", "PID on host", "UID on host", "COMMAND"]]
    rows += [
        [
            str(x.container_pid if x.container_pid is not None else "-"),
            str(x.host_pid),
            str(x.host_uid),
            x.command[:60],
        ]
        for x in p.items
    ]
    out.table(rows)


def _filesystem(out: _Out, r: m.Report) -> None:
    fs = r.filesystem
    out.section("filesystem")
    root = fs.root
    mode = "read-only" if root.read_only else "read-write"
    out.fact(
        "root",
        f"{root.fstype}, {mode}",
        root.source,
        "the image's layers, read-only, under one writable directory of its own"
        if root.fstype == "overlay"
        else "the container's root file system",
    )
    for i, lower in enumerate(root.lower):
        out.note(f"  lower {i + 1}: {lower}" + ("   (top layer)" if i == 0 else ""))
    if root.upper:
        out.note(f"  upper:   {root.upper}   (every change lands here)")
    out.note(f"mounts ({fs.source}; per-mount options, then where it comes from):")
    rows = [["TARGET", "TYPE", "OPTIONS", "FROM"]]
    for x in fs.mounts:
        src = x.host_path or (f"{x.source}:{x.root}" if x.root != "/" else x.source)
        rows.append([x.target, x.fstype, ",".join(x.options), f"{src} [{x.kind}]"])
    out.table(rows)
    masked = ", ".join(k.path for k in fs.masked) or "none"
    out.fact(
        "masked",
        masked,
        fs.source,
        "hidden under /dev/null or an empty read-only tmpfs: kernel data the "
        "container has no need to see",
    )
    if fs.unmasked:
        out.fact(
            "not masked",
            ", ".join(fs.unmasked),
            fs.source,
            "Docker hides these by default; here they are visible",
        )
    out.fact(
        "read-only",
        ", ".join(fs.read_only) or "none",
        fs.source,
        "writes fail with EROFS even for root in the container",
    )
    out.fact(
        "/sys",
        "writable" if fs.sys_writable else "read-only",
        fs.source,
        "host-wide kernel and device settings"
        if fs.sys_writable
        else "the kernel's device tree, readable only",
    )
    for v in fs.volumes:
        out.fact(
            "volume" if v.kind == "volume" else "bind mount",
            f"{v.host_path} -> {v.target} ({'ro' if v.read_only else 'rw'})",
            fs.source,
            "a host directory seen inside: the same files, not a copy",
        )


def _resources(out: _Out, r: m.Report) -> None:
    res = r.resources
    out.section("resources", f"cgroup {res.cgroup_version}")
    paths = sorted(set(res.cgroup_paths.values()))
    out.note(
        "cgroup directories: "
        + (", ".join(paths) if len(paths) < 3 else f"{len(paths)} hierarchies, e.g. {paths[0]}")
    )
    for v in res.limits + res.usage:
        if v.name.startswith("memory") and v.name != "memory.oom_kills":
            value = _size(v.value)
        elif v.name == "cpu.usage_ns" and v.value is not None:
            value = f"{v.value / 1e9:.3f} s"
        elif v.value is None:
            value = "unlimited" if v.raw in ("max", "-1") else (v.raw or "none")
        else:
            value = str(v.value)
        out.fact(v.name, value, v.source, _LIMIT_MEANING.get(v.name, ""))
    quota, period = res.get("cpu.quota_us"), res.get("cpu.period_us")
    if quota and period and quota.value and period.value:
        out.note(f"=> at most {quota.value / period.value:g} CPU of time")
    if res.cpuset:
        out.note(
            f"cpuset: cpus {res.cpuset.get('cpus', '')}, memory nodes "
            f"{res.cpuset.get('mems', '')} (where it may run)"
        )
    if res.frozen:
        out.note("frozen: the container is paused")


def _privileges(out: _Out, r: m.Report) -> None:
    p = r.privileges
    out.section("privileges")
    out.fact(
        "uid",
        f"{p.uid.effective} inside, {p.host_uid.effective} on the host",
        p.source,
        "root inside and outside: the same user"
        if p.uid.effective == 0 == p.host_uid.effective
        else "the user its processes run as",
    )
    out.fact(
        "gid",
        f"{p.gid.effective} inside, {p.host_gid.effective} on the host",
        p.source,
        "its group, inside and as the host numbers it",
    )
    for name, caps in p.capabilities.items():
        text = ", ".join(c.removeprefix("CAP_").lower() for c in caps) or "none"
        out.fact(f"caps {name}", f"{len(caps)}: {text}", p.source, _CAP_SETS[name])
    out.fact(
        "no_new_privs",
        "yes" if p.no_new_privs else "no",
        p.source,
        "setuid programs cannot raise privileges"
        if p.no_new_privs
        else "a setuid program can still gain its owner's rights",
    )
    out.fact(
        "seccomp",
        f"{p.seccomp_mode}, {p.seccomp_filters} filter(s)",
        p.source,
        "system calls pass a filter before the kernel runs them"
        if p.seccomp_mode == "filter"
        else "no filter: every system call reaches the kernel",
    )
    if p.lsm_label:
        out.fact(
            "LSM label",
            p.lsm_label,
            f"/proc/{r.target.pid}/attr/current",
            "its AppArmor or SELinux label ('unconfined': no policy applies)",
        )
    probe = p.syscall_probe
    if probe.ran:
        out.note("dangerous system calls, TESTED: a probe in the container's namespaces")
        if probe.filter_source:
            how = (
                "the filter copied out of the kernel (ptrace)"
                if probe.filter_source == "kernel"
                else "the filter compiled from config.json (the kernel's copy was out of reach)"
            )
            out.note(f"made each call without a filter and then under {how}:")
        else:
            out.note("made each call; with no filter installed, both runs answer the same:")
            out.note("what the kernel itself answers is all that stands in the way")
        rows = [["CALL", "FILTER", "WITH", "WITHOUT", "WOULD GIVE"]]
        rows += [[s.name, s.verdict, s.with_filter, s.without_filter, s.grants] for s in p.syscalls]
        out.table(rows)
    else:
        out.note(f"system call probe not run: {probe.error}")
    if p.device_rules is not None:
        out.fact(
            "device rules",
            "; ".join(p.device_rules) or "none",
            p.device_rules_source,
            "the device cgroup's allow-list (type major:minor access)",
        )
    dprobe = p.device_probe
    if dprobe.ran:
        out.note("devices, TESTED: open() of each device node from inside the container's")
        out.note("cgroup (EPERM is the device cgroup saying no), and from ours as a control:")
        rows = [["DEVICE", "NAME", "ACCESS", "INSIDE", "OUTSIDE", "MKNOD"]]
        rows += [
            [d.device, d.name, d.verdict, d.open_in_container_cgroup, d.open_outside, d.mknod]
            for d in p.devices
        ]
        out.table(rows)
    else:
        out.note(f"device probe not run: {dprobe.error}")
    nodes = ", ".join(
        f"{n.path.removeprefix('/dev/')} ({n.kind} {n.major}:{n.minor})" for n in p.device_nodes
    )
    out.fact(
        "nodes in /dev",
        nodes or "none",
        f"/proc/{r.target.pid}/root/dev",
        "what exists is not what may be opened: the cgroup decides",
    )


def _network(out: _Out, r: m.Report) -> None:
    n = r.network
    out.section("network")
    out.note(
        (
            "it shares the host's network namespace: these are the host's interfaces"
            if n.netns_shared
            else "its own network namespace:"
        )
        + f" ({n.source})"
    )
    rows = [["INTERFACE", "KIND", "STATE", "ADDRESSES"]]
    rows += [[i.name, i.kind or "-", i.state, " ".join(i.addresses) or "-"] for i in n.interfaces]
    out.table(rows)
    out.note("routes:")
    rows = [["DESTINATION", "VIA", "DEVICE"]]
    rows += [[x.destination, x.gateway or "-", x.device] for x in n.routes]
    out.table(rows)
    out.fact(
        "DNS servers",
        ", ".join(n.dns_servers) or "none",
        n.dns_source,
        "where its resolver sends name lookups",
    )
    if n.published:
        out.note(f"published ports ({n.published_source}):")
        for p in n.published:
            host = f"{p.host_ip or '*'}:{p.host_port}"
            out.note(
                f"  {p.protocol} {host} -> {p.container_ip}:{p.container_port}"
                f"   [{p.table} {p.chain}] {p.rule}"
            )
    elif not n.netns_shared:
        out.note("published ports: none (no DNAT rule towards its addresses)")


def _verdict(out: _Out, r: m.Report) -> None:
    out.section("verdict: weaker than Docker's defaults")
    weaker = [w for w in r.verdict if not w.docker_default]
    if not weaker:
        out.note("nothing: this container is as confined as Docker's defaults make one")
    for w in r.verdict:
        mark = "note" if w.docker_default else "WEAKER"
        out.note(f"{mark}: {w.title}")
        out.note(f"  flag:    {w.flag}")
        out.note(f"  config:  {w.config}")
        out.note(f"  here:    {w.detail}")
        out.note(f"  exposes: {w.exposes}")
