"""Gather a running container's facts from the kernel, section by section.

Nothing here is taken from portique's database or from the container's
config.json: namespaces, ids, capabilities and seccomp come from
/proc/<pid>; mounts from /proc/<pid>/mountinfo; limits from the cgroup
files; the network over netlink inside the container's netns and from the
host's nftables ruleset; what seccomp and the device cgroup deny is tested
by probes (runtime/probe.py). The one thing config.json may still give is a
seccomp program to probe with, when the kernel will not hand out its copy
(rootless: no CAP_SYS_ADMIN in the initial user namespace), and the report
says so.

"The host" is the namespaces of PID 1 when we can read them, else our own
(in some sandboxes PID 1 is out of reach; the report names which).

Files inside the container are opened relative to /proc/<pid>/root with
openat2(RESOLVE_IN_ROOT): a hostile container's symlinks cannot point our
reads at the host's files, and only regular files are read (a FIFO would
block us).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from portique.engine.explain import model as m
from portique.linux import procinfo
from portique.linux.caps import CAPABILITIES

if TYPE_CHECKING:
    from portique.oci.seccomp import LinuxSeccomp
    from portique.runtime.cgroups.limits import CgroupFacts, Value

_MAX_READ = 1 << 16
_CAP_SETS = (
    ("effective", "CapEff"),
    ("permitted", "CapPrm"),
    ("inheritable", "CapInh"),
    ("bounding", "CapBnd"),
    ("ambient", "CapAmb"),
)
# Files the engine itself bind-mounts into every container.
_ENGINE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
_VIRTUAL = frozenset({"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "overlay"})


def errno_name(code: int) -> str:
    if code == 0:
        return "ok"
    if code < 0:
        import signal

        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return errno.errorcode.get(code, str(code))


def cap_names(mask: int) -> list[str]:
    return [
        CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"CAP_{bit}"
        for bit in range(64)
        if mask >> bit & 1
    ]


# ---------------------------------------------------------------- files inside


def _open_in_root(pid: int, path: str, flags: int) -> int:
    from portique.linux.fs import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2

    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return openat2(
            root, path.lstrip("/") or ".", flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        )
    finally:
        os.close(root)


def read_in_root(pid: int, path: str) -> str | None:
    """A regular file of the container as text (64 KiB at most), or None."""
    try:
        fd = _open_in_root(pid, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _MAX_READ).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def stat_in_root(pid: int, path: str) -> os.stat_result | None:
    """stat of a path of the container, its last component not followed."""
    try:
        fd = _open_in_root(pid, path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the host


def reference_pid() -> tuple[int, str]:
    try:
        os.stat("/proc/1/ns/pid")
        return 1, "PID 1, the host's init"
    except OSError as e:
        why = (e.strerror or str(e)).lower()
        return os.getpid(), f"portique's own process, since /proc/1/ns is out of reach here: {why}"


def kernel(pid: int) -> m.Kernel:
    release = Path("/proc/sys/kernel/osrelease").read_text().strip()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    theirs = (read_in_root(pid, "/proc/sys/kernel/random/boot_id") or "").strip()
    return m.Kernel(
        release=release,
        release_source="/proc/sys/kernel/osrelease",
        boot_id=boot,
        boot_id_source="/proc/sys/kernel/random/boot_id",
        container_boot_id=theirs,
        container_boot_id_source=f"/proc/{pid}/root/proc/sys/kernel/random/boot_id",
        same_kernel=theirs == boot if theirs else True,
    )


def namespaces(pid: int, ref: int) -> m.Namespaces:
    items = []
    for kind in procinfo.NAMESPACE_FILES:
        dev, ino = procinfo.namespace(pid, f"{kind}")
        hdev, hino = procinfo.namespace(ref, f"{kind}")
        items.append(
            m.Namespace(
                type=kind,
                inode=ino,
                host_inode=hino,
                shared=(dev, ino) == (hdev, hino),
                source=f"/proc/{pid}/ns/{kind}",
                reference=f"/proc/{ref}/ns/{kind}",
            )
        )

    def ranges(kind: str) -> list[m.IdRange]:
        return [m.IdRange(r.inside, r.outside, r.count) for r in procinfo.id_map(pid, kind)]

    return m.Namespaces(
        items,
        ranges("uid"),
        ranges("gid"),
        f"/proc/{pid}/uid_map",
        f"/proc/{pid}/gid_map",
    )


# ---------------------------------------------------------------- processes


def processes(pid: int, ns: m.Namespaces, cgroup: CgroupFacts) -> m.Processes:
    pidns = ns.get("pid")
    init_level = len(procinfo.status_ids(procinfo.status(pid), "NSpid"))
    all_pids = procinfo.pids()
    if pidns.shared:
        # The container sees every process; its own are those of its cgroup.
        members = _cgroup_members(cgroup)
        source = "cgroup.procs of the container's cgroup"
        visible = len(all_pids)
    else:
        members = []
        for p in all_pids:
            try:
                if os.stat(f"/proc/{p}/ns/pid").st_ino == pidns.inode:
                    members.append(p)
            except OSError:
                continue  # gone, or out of reach
        source = f"/proc/*/ns/pid equal to /proc/{pid}/ns/pid"
        visible = len(members)
    items = []
    for p in sorted(set(members) | {pid}):
        try:
            st = procinfo.status(p)
            args = procinfo.cmdline(p)
        except OSError:
            continue
        nspid = list(procinfo.status_ids(st, "NSpid"))
        items.append(
            m.Process(
                host_pid=p,
                container_pid=nspid[init_level - 1] if len(nspid) >= init_level else None,
                nspid=nspid,
                parent_host_pid=int(st.get("PPid", "0") or 0),
                host_uid=(procinfo.status_ids(st, "Uid") or (0,))[0],
                command=" ".join(args) if args else f"[{st.get('Name', '?')}]",
                source=f"/proc/{p}/status",
            )
        )
    return m.Processes(pidns.shared, items, visible, source)


def _cgroup_members(cgroup: CgroupFacts) -> list[int]:
    for key in ("pids", "memory", "unified", "freezer", "devices", "cpu"):
        d = cgroup.paths.get(key)
        if d:
            try:
                text = Path(d, "cgroup.procs").read_text()
            except OSError:
                continue
            return [int(x) for x in text.split()]
    return []


# ---------------------------------------------------------------- filesystem


def _host_path(mount: procinfo.Mount, host_mounts: list[procinfo.Mount]) -> str:
    """Where the directory a bind mount shows lives on the host ("" if nowhere)."""
    best: procinfo.Mount | None = None
    for h in host_mounts:
        if (h.major, h.minor) != (mount.major, mount.minor):
            continue
        root = h.root.rstrip("/")
        if (mount.root == h.root or mount.root.startswith(root + "/")) and (
            best is None or len(h.root) > len(best.root)
        ):
            best = h
    if best is None:
        return ""
    rest = mount.root[len(best.root.rstrip("/")) :]
    return (best.target.rstrip("/") + rest) or "/"


def _overlay(super_options: tuple[str, ...]) -> tuple[list[str], str, str]:
    lower: list[str] = []
    upper = work = ""
    for opt in super_options:
        key, _, val = opt.partition("=")
        if key == "lowerdir":
            lower += [p for p in val.replace("\\:", "\0").split(":") if p]
        elif key in ("lowerdir+", "datadir+"):
            lower.append(val)
        elif key == "upperdir":
            upper = val
        elif key == "workdir":
            work = val
    return [p.replace("\0", ":") for p in lower], upper, work


def filesystem(pid: int, engine_root: Path | None) -> m.Filesystem:
    from portique.runtime.confinement import MASKED_PATHS

    mounts = procinfo.mountinfo(pid)
    host_mounts = procinfo.mountinfo("self")
    root_mount = next((x for x in reversed(mounts) if x.target == "/"), None)
    out: list[m.Mount] = []
    masked: list[m.Masked] = []
    for x in mounts:
        host = "" if x.fstype in _VIRTUAL and x.fstype != "tmpfs" else _host_path(x, host_mounts)
        if x.fstype == "tmpfs" and x.target.startswith("/dev"):
            host = ""  # the container's own /dev
        leaf = not any(y.parent_id == x.mount_id for y in mounts)
        kind = _kind(pid, x, x is root_mount, host, engine_root, leaf)
        if kind == "masked":
            st = stat_in_root(pid, x.target)
            file = st is not None and stat.S_ISCHR(st.st_mode)
            masked.append(m.Masked(x.target, "null-device" if file else "empty-tmpfs"))
        out.append(
            m.Mount(
                target=x.target,
                fstype=x.fstype,
                source=x.source,
                root=x.root,
                host_path=host if kind not in ("masked",) else "",
                options=list(x.options),
                super_options=list(x.super_options),
                read_only=x.read_only,
                kind=kind,
            )
        )
    masked_paths = {k.path for k in masked}
    unmasked = [
        p for p in MASKED_PATHS if p not in masked_paths and stat_in_root(pid, p) is not None
    ]
    sys_mount = next((x for x in reversed(mounts) if x.target == "/sys"), None)
    read_only = [
        x.target
        for x in out
        if x.read_only
        and x.kind not in ("masked", "cgroup", "cgroup2")
        and (x.target.startswith("/proc/") or x.target == "/sys")
    ]
    if root_mount is not None:
        lower, upper, work = _overlay(root_mount.super_options)
        rootfs = m.RootFs(
            root_mount.fstype, root_mount.read_only, lower, upper, work, f"/proc/{pid}/mountinfo"
        )
    else:
        rootfs = m.RootFs("", False, [], "", "", f"/proc/{pid}/mountinfo")
    return m.Filesystem(
        root=rootfs,
        mounts=out,
        masked=masked,
        unmasked=unmasked,
        read_only=read_only,
        sys_writable=sys_mount is not None and not sys_mount.read_only,
        volumes=[x for x in out if x.kind in ("volume", "bind")],
        source=f"/proc/{pid}/mountinfo",
    )


def _kind(
    pid: int, x: procinfo.Mount, is_root: bool, host: str, engine_root: Path | None, leaf: bool
) -> str:
    if is_root:
        return "root"
    if x.target.startswith(("/proc/", "/sys/")) and x.fstype not in ("cgroup", "cgroup2"):
        # A mask is /dev/null bound over a file, or an empty read-only tmpfs over a directory.
        st = stat_in_root(pid, x.target)
        if st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return "masked"
        if x.fstype == "tmpfs" and x.read_only and leaf and _is_empty_dir(pid, x.target):
            return "masked"
    if x.fstype in _VIRTUAL:
        return x.fstype
    if x.target in _ENGINE_FILES and "/containers/" in host:
        return "engine-file"
    if engine_root is not None and host.startswith(str(engine_root / "volumes") + "/"):
        return "volume"
    return "bind" if host else x.fstype


def _is_empty_dir(pid: int, path: str) -> bool:
    try:
        fd = _open_in_root(pid, path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def device_nodes(pid: int) -> list[m.DeviceNode]:
    out: list[m.DeviceNode] = []
    try:
        fd = _open_in_root(pid, "/dev", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return out
    try:
        for name in sorted(os.listdir(fd)):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                out.append(
                    m.DeviceNode(f"/dev/{name}", kind, os.major(st.st_rdev), os.minor(st.st_rdev))
                )
    finally:
        os.close(fd)
    return out


# ---------------------------------------------------------------- resources


def resources(pid: int, facts: CgroupFacts) -> m.Resources:
    def conv(values: list[Value]) -> list[m.Value]:
        return [m.Value(v.name, v.value, v.raw, v.source) for v in values]

    return m.Resources(
        cgroup_version=facts.version,
        cgroup_paths=dict(facts.paths),
        limits=conv(list(facts.limits)),
        usage=conv(list(facts.usage)),
        cpuset=dict(facts.cpuset),
        frozen=facts.frozen,
        source=f"/proc/{pid}/cgroup, then the files of each cgroup directory",
    )


# ---------------------------------------------------------------- privileges


def _ids(values: tuple[int, ...]) -> m.Ids:
    v = (*values, 0, 0, 0, 0)[:4]
    return m.Ids(*v)


def privileges(
    pid: int,
    ns: m.Namespaces,
    cgroup: CgroupFacts,
    *,
    start_time: int | None,
    frozen: bool,
    spec_seccomp: LinuxSeccomp | None,
) -> m.Privileges:
    st = procinfo.status(pid)
    uid_map = [procinfo.IdRange(r.inside, r.outside, r.count) for r in ns.uid_map]
    gid_map = [procinfo.IdRange(r.inside, r.outside, r.count) for r in ns.gid_map]

    def inside(ids: tuple[int, ...], maps: list[procinfo.IdRange]) -> tuple[int, ...]:
        # An id with no mapping shows as the overflow id, 65534, as the kernel does.
        return tuple(65534 if (x := procinfo.to_inside(i, maps)) is None else x for i in ids)

    uids, gids = procinfo.status_ids(st, "Uid"), procinfo.status_ids(st, "Gid")
    groups = list(procinfo.status_ids(st, "Groups"))
    mode = {"0": "disabled", "1": "strict", "2": "filter"}.get(st.get("Seccomp", "0"), "unknown")
    try:
        lsm = Path(f"/proc/{pid}/attr/current").read_text().strip("\0\n ")
    except OSError:
        lsm = ""
    syscalls, sprobe = _syscall_checks(pid, mode, start_time, frozen, spec_seccomp)
    devices, dprobe = _device_checks(cgroup, frozen)
    return m.Privileges(
        host_uid=_ids(uids),
        host_gid=_ids(gids),
        uid=_ids(inside(uids, uid_map)),
        gid=_ids(inside(gids, gid_map)),
        host_groups=groups,
        groups=list(inside(tuple(groups), gid_map)),
        capabilities={name: cap_names(procinfo.status_mask(st, key)) for name, key in _CAP_SETS},
        no_new_privs=st.get("NoNewPrivs", "0") == "1",
        seccomp_mode=mode,
        seccomp_filters=int(st.get("Seccomp_filters", "0") or 0),
        lsm_label=lsm,
        source=f"/proc/{pid}/status",
        syscall_probe=sprobe,
        syscalls=syscalls,
        device_rules=cgroup.device_rules,
        device_rules_source=(
            f"{cgroup.paths['devices']}/devices.list" if "devices" in cgroup.paths else ""
        ),
        device_probe=dprobe,
        devices=devices,
        device_nodes=device_nodes(pid),
    )


def _syscall_checks(
    pid: int,
    mode: str,
    start_time: int | None,
    frozen: bool,
    spec_seccomp: LinuxSeccomp | None,
) -> tuple[list[m.SyscallCheck], m.Probe]:
    from portique.runtime import probe

    if frozen:
        return [], m.Probe(False, "", "the container is paused: its filter cannot be copied")
    if mode == "strict":
        return [], m.Probe(False, "", "strict mode allows only read, write, exit and sigreturn")
    programs: list[bytes] = []
    source = ""
    if mode == "filter":
        try:
            programs = probe.seccomp_programs(pid)
            source = "kernel"
        except (probe.ProbeError, OSError) as e:
            if spec_seccomp is None:
                return [], m.Probe(False, "", f"cannot copy the filter out of the kernel: {e}")
            programs, source = probe.programs_from_spec(spec_seccomp), "config.json"
    try:
        results = probe.probe_syscalls(pid, programs, start_time=start_time)
    except (probe.ProbeError, OSError) as e:
        return [], m.Probe(False, source, str(e))
    checks = [
        m.SyscallCheck(
            r.name,
            r.call,
            r.grants,
            r.verdict,
            errno_name(r.with_filter),
            errno_name(r.without_filter),
        )
        for r in results
    ]
    return checks, m.Probe(True, source, "")


def _device_checks(cgroup: CgroupFacts, frozen: bool) -> tuple[list[m.DeviceCheck], m.Probe]:
    from portique.runtime import probe

    files = cgroup.procs_files("devices")
    if not files:
        return [], m.Probe(False, "", "no device cgroup found for the container")
    if frozen:
        return [], m.Probe(False, "", "the container is paused")
    extra: tuple[probe.DeviceProbe, ...] = ()
    root_dev = os.stat("/").st_dev
    if os.major(root_dev):
        extra = (
            probe.DeviceProbe("b", os.major(root_dev), os.minor(root_dev), "the host's root disk"),
        )
    try:
        results = probe.probe_devices(files, extra)
    except (probe.ProbeError, OSError) as e:
        return [], m.Probe(False, "", str(e))
    checks = [
        m.DeviceCheck(
            device=f"{r.kind} {r.major}:{r.minor}",
            name=r.name,
            verdict=r.verdict,
            open_in_container_cgroup=errno_name(r.open_errno),
            open_outside=errno_name(r.outside_errno),
            mknod=errno_name(r.mknod_errno),
        )
        for r in results
    ]
    return checks, m.Probe(True, "", "")


# ---------------------------------------------------------------- network


def network(pid: int, ns: m.Namespaces) -> m.Network:
    from portique.network import netview

    shared = ns.get("net").shared
    view = netview.view(Path(f"/proc/{pid}/ns/net"))
    interfaces = [
        m.Interface(i.name, i.kind, i.state, i.mac, i.mtu, list(i.addresses))
        for i in view.interfaces
    ]
    routes = [m.Route(r.destination, r.gateway, r.device, r.family) for r in view.routes]
    servers: list[str] = []
    search: list[str] = []
    for line in (read_in_root(pid, "/etc/resolv.conf") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1])
        elif parts and parts[0] == "search":
            search = parts[1:]
    published: list[m.PublishedPort] = []
    if not shared:
        addresses = {
            a.split("/")[0] for i in view.interfaces if i.kind != "loopback" for a in i.addresses
        }
        published = [
            m.PublishedPort(
                r.protocol,
                r.host_ip,
                r.host_port,
                r.container_ip,
                r.container_port,
                r.table,
                r.chain,
                r.rule,
            )
            for r in netview.dnat_rules(addresses)
        ]
    return m.Network(
        netns_shared=shared,
        interfaces=interfaces,
        routes=routes,
        source=f"netlink, from inside /proc/{pid}/ns/net",
        dns_servers=servers,
        dns_search=search,
        dns_source=f"/proc/{pid}/root/etc/resolv.conf",
        published=published,
        published_source="nft list ruleset (DNAT rules towards the container's addresses)",
    )
