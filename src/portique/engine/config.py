"""From an image config plus user options to Docker's merged Config and to an OCI spec.

Two pure steps:

- `merge_image_config(user, image)`: Docker's rules for Entrypoint/Cmd, Env,
  WorkingDir, User, Volumes, Labels and StopSignal. The result is what
  `inspect` shows as Config and what the container is created from.
- `build_spec(...)`: Docker's Config + HostConfig (+ resolved user, mounts and
  limits) -> the OCI runtime config.json dict the runtime executes.

No I/O here; the caller (containers.py) resolves paths and reads files.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from portique.engine import options as opt
from portique.engine.userdb import ResolvedUser
from portique.errors import InvalidArgument
from portique.oci.value import value
from portique.runtime.confinement import NAMESPACES, Confinement

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH = "/sbin/docker-init"  # where Docker puts its tini, so `ps` inside looks the same
CPU_PERIOD = 100_000

# ------------------------------------------------------------ image defaults


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _map(value: Any) -> dict[str, Any]:
    """A JSON object from the (hostile) image config, or nothing."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items()}


def _image_workdir(value: Any) -> str:
    wd = value if isinstance(value, str) else ""
    # Docker treats an image's relative WorkingDir as relative to /.
    return wd if not wd or wd.startswith("/") else "/" + wd


def merge_image_config(user: Mapping[str, Any], image: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's Config after create: user values win, the image fills the rest.

    `user` carries Entrypoint as None (not given) or a list ([] = cleared by
    `--entrypoint ""`), and Cmd as None or the user's arguments.
    """
    out = dict(user)
    user_ep = user.get("Entrypoint")
    user_cmd = user.get("Cmd")
    if user_ep is not None:
        # --entrypoint resets the image's Cmd too.
        out["Entrypoint"] = list(user_ep) or None
        out["Cmd"] = list(user_cmd) if user_cmd else None
    else:
        out["Entrypoint"] = _str_list(image.get("Entrypoint")) or None
        out["Cmd"] = list(user_cmd) if user_cmd else (_str_list(image.get("Cmd")) or None)
    out["Env"] = opt.merge_env(_str_list(image.get("Env")), _str_list(user.get("Env")))
    if not any(e.startswith("PATH=") for e in out["Env"]):
        out["Env"].insert(0, DEFAULT_PATH)
    out["WorkingDir"] = user.get("WorkingDir") or _image_workdir(image.get("WorkingDir"))
    image_user = image.get("User")
    out["User"] = user.get("User") or (image_user if isinstance(image_user, str) else "")
    labels = {k: str(v) for k, v in _map(image.get("Labels")).items()}
    labels.update(user.get("Labels") or {})
    out["Labels"] = labels
    volumes: dict[str, Any] = {k: {} for k in _map(image.get("Volumes"))}
    volumes.update(user.get("Volumes") or {})
    out["Volumes"] = volumes or None
    stop = image.get("StopSignal")
    out["StopSignal"] = user.get("StopSignal") or (stop if isinstance(stop, str) else None)
    ports: dict[str, Any] = {k: {} for k in _map(image.get("ExposedPorts"))}
    ports.update(user.get("ExposedPorts") or {})
    out["ExposedPorts"] = ports or None
    if not out.get("Shell") and image.get("Shell"):
        out["Shell"] = image["Shell"]
    from portique.engine.health import merge

    hc = merge(user.get("Healthcheck"), image.get("Healthcheck"))
    if hc is not None:
        out["Healthcheck"] = hc
    else:
        out.pop("Healthcheck", None)
    return out


def command_of(config: Mapping[str, Any]) -> list[str]:
    argv = _str_list(config.get("Entrypoint")) + _str_list(config.get("Cmd"))
    if not argv:
        raise InvalidArgument("no command specified")
    return argv


# -------------------------------------------------------------------- hosts


def hosts_file(hostname: str, host_network: bool, host_hosts: str = "") -> str:
    if host_network and host_hosts:
        return host_hosts
    return (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        f"127.0.1.1\t{hostname}\n"
    )


def resolv_conf(host_resolv: str, host_network: bool) -> str:
    """The host's resolv.conf; loopback resolvers are unreachable from a
    container's own network namespace, so Docker's fallbacks replace them."""
    if host_network:
        return host_resolv
    lines = []
    servers = 0
    for line in host_resolv.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            if parts[1].startswith("127.") or parts[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if servers == 0:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- spec


@value
class SpecInputs:
    """What `build_spec` needs beyond Docker's Config/HostConfig."""

    container_id: str
    rootfs: str
    container_dir: str
    user: ResolvedUser
    mounts: Sequence[Mapping[str, Any]]  # resolved user mounts, OCI-shaped
    seccomp: Mapping[str, Any] | None  # None = unconfined
    init_binary: str = ""  # host path of tini when HostConfig.Init
    host_caps: Sequence[str] | None = None
    netns_path: str = ""  # join an existing network namespace (bridge networking)
    # --pid/--ipc container:X: {"pid": "/proc/PID/ns/pid", "ipc": ...}
    ns_paths: Mapping[str, str] | None = None
    devices: Mapping[str, Any] | None = None  # host path -> run_opts.HostDevice
    shm_source: str = ""  # --ipc host|container:X: the /dev/shm to bind


def hard_limit(rlimit: str) -> int:
    res = getattr(resource, rlimit)
    _, hard = resource.getrlimit(res)
    return opt.RLIM_INFINITY if hard == resource.RLIM_INFINITY else int(hard)


def _cgroup_parent() -> str:
    """ "" as root; a rootless engine's delegated cgroup v2 subtree, if any."""
    from portique.runtime.cgroups import delegated_parent

    return delegated_parent()


def _rlimits(host: Mapping[str, Any], hard_of: Callable[[str], int]) -> list[dict[str, Any]]:
    wanted: dict[str, tuple[int, int]] = {}
    # Docker's daemon hands containers a large open-files limit; we give the
    # same, capped by what this host lets us set without CAP_SYS_RESOURCE.
    nofile = min(1048576, hard_of("RLIMIT_NOFILE"))
    wanted["RLIMIT_NOFILE"] = (nofile, nofile)
    for u in host.get("Ulimits") or []:
        lim = opt.Ulimit(u["Name"], int(u["Soft"]), int(u["Hard"]))
        hard = hard_of(lim.rlimit)
        if lim.hard > hard:
            raise InvalidArgument(
                f"ulimit {lim.name}={lim.soft}:{lim.hard} is above this host's hard limit {hard}"
            )
        wanted[lim.rlimit] = (lim.soft, lim.hard)
    return [{"type": k, "soft": s, "hard": h} for k, (s, h) in wanted.items()]


def _etc_mounts(container_dir: str, readonly_rootfs: bool) -> list[dict[str, Any]]:
    return [
        {
            "destination": f"/etc/{name}",
            "type": "bind",
            "source": f"{container_dir}/{name}",
            "options": ["rbind", "rprivate"] + (["ro"] if readonly_rootfs else []),
        }
        for name in ("resolv.conf", "hostname", "hosts")
    ]


def _resources(
    host: Mapping[str, Any], confinement: Confinement, devices: Mapping[str, Any]
) -> dict[str, Any]:
    from portique.engine import run_opts as ro

    res: dict[str, Any] = {"devices": confinement.device_rules()}
    for dev, _path, perms in ro.device_nodes(host, devices):
        res["devices"].append(
            {"allow": True, "type": dev.kind, "major": dev.major, "minor": dev.minor,
             "access": perms}
        )  # fmt: skip
    memory = int(host.get("Memory") or 0)
    swap = int(host.get("MemorySwap") or 0)
    mem: dict[str, Any] = {}
    if memory:
        mem["limit"] = memory
        # Docker: unset swap means memory+swap = 2 x memory; -1 = unlimited.
        mem["swap"] = -1 if swap == -1 else (swap or 2 * memory)
    if host.get("MemoryReservation"):
        mem["reservation"] = int(host["MemoryReservation"])
    if host.get("MemorySwappiness") is not None:
        mem["swappiness"] = int(host["MemorySwappiness"])
    if host.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    nano = int(host.get("NanoCpus") or 0)
    if nano:
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = nano * CPU_PERIOD // 1_000_000_000
    if host.get("CpuPeriod"):
        cpu["period"] = int(host["CpuPeriod"])
    if host.get("CpuQuota"):
        cpu["quota"] = int(host["CpuQuota"])
    if host.get("CpusetMems"):
        cpu["mems"] = str(host["CpusetMems"])
    if host.get("CpuShares"):
        cpu["shares"] = int(host["CpuShares"])
    if host.get("CpusetCpus"):
        cpu["cpus"] = str(host["CpusetCpus"])
    if cpu:
        res["cpu"] = cpu
    pids = host.get("PidsLimit")
    if pids is not None and int(pids) > 0:
        res["pids"] = {"limit": int(pids)}
    blkio: dict[str, Any] = {}
    if host.get("BlkioWeight"):
        blkio["weight"] = int(host["BlkioWeight"])
    for key, spec_key in ro.THROTTLE_SPEC_KEYS.items():
        limits = [
            {
                "major": devices[t["Path"]].major,
                "minor": devices[t["Path"]].minor,
                "rate": t["Rate"],
            }
            for t in host.get(key) or ()
        ]
        if limits:
            blkio[spec_key] = limits
    if blkio:
        res["blockIO"] = blkio
    return res


# HostConfig's mode key of each namespace a container may share or leave.
_NS_MODES = {"pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode", "cgroup": "CgroupnsMode"}


def _namespaces(
    host: Mapping[str, Any], netns_path: str, paths: Mapping[str, str]
) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = []
    for t in NAMESPACES:
        mode = str(host.get(_NS_MODES.get(t, "")) or "")
        if mode == "host":
            continue  # the host's namespace: none listed
        ns.append({"type": t, "path": paths[t]} if t in paths else {"type": t})
    mode = str(host.get("NetworkMode") or "none")
    if mode == "host":
        pass
    elif netns_path:
        ns.append({"type": "network", "path": netns_path})
    else:
        ns.append({"type": "network"})
    return ns


def build_spec(
    config: Mapping[str, Any],
    host: Mapping[str, Any],
    inputs: SpecInputs,
    *,
    hard_of: Callable[[str], int] = hard_limit,
) -> dict[str, Any]:
    privileged = bool(host.get("Privileged"))
    readonly_rootfs = bool(host.get("ReadonlyRootfs"))
    sec = opt.parse_security_opts(host.get("SecurityOpt") or [])
    caps = opt.capabilities(
        host.get("CapAdd") or [], host.get("CapDrop") or [], privileged, inputs.host_caps
    )
    # The one definition of a container's confinement, shared with build's RUN steps.
    confinement = Confinement(tuple(caps), inputs.seccomp, privileged, sec.no_new_privileges)
    argv = command_of(config)
    mounts = _shm(confinement.mounts(), host, inputs.shm_source)
    # /etc/hosts, hostname and resolv.conf go on top of the user's mounts (a
    # volume on /etc keeps them, as Docker), unless the user mounts one itself.
    user_targets = {str(m.get("destination")) for m in inputs.mounts}
    etc = [m for m in _etc_mounts(inputs.container_dir, readonly_rootfs)
           if m["destination"] not in user_targets]  # fmt: skip
    if host.get("Init"):
        if not inputs.init_binary:
            raise InvalidArgument("--init needs tini-static on the host (apt-get install tini)")
        argv = [INIT_PATH, "--", *argv]
        mounts.append(
            {
                "destination": INIT_PATH,
                "type": "bind",
                "source": inputs.init_binary,
                "options": ["bind", "ro", "nosuid", "nodev"],
            }
        )
    mounts += [dict(m) for m in inputs.mounts]
    mounts += etc
    env = list(config.get("Env") or [])
    hostname = str(config.get("Hostname") or inputs.container_id[:12])
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.insert(1 if env and env[0].startswith("PATH=") else 0, f"HOSTNAME={hostname}")
    if config.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={inputs.user.home or '/'}")
    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": {"uid": inputs.user.uid, "gid": inputs.user.gid},
        "args": argv,
        "env": env,
        "cwd": str(config.get("WorkingDir") or "/"),
        "capabilities": confinement.process_capabilities(),
        "rlimits": _rlimits(host, hard_of),
        "noNewPrivileges": confinement.no_new_privileges,
    }
    if inputs.user.additional_gids:
        process["user"]["additionalGids"] = list(inputs.user.additional_gids)
    if host.get("OomScoreAdj") is not None:
        process["oomScoreAdj"] = int(host["OomScoreAdj"])
    from portique.engine import run_opts as ro

    devices = inputs.devices or {}
    linux: dict[str, Any] = {
        "namespaces": _namespaces(host, inputs.netns_path, inputs.ns_paths or {}),
        "resources": _resources(host, confinement, devices),
        "cgroupsPath": _cgroup_parent() + ro.cgroups_path(host, inputs.container_id),
        **confinement.linux_paths(),
    }
    if host.get("Devices"):
        linux["devices"] = [
            {"path": path, "type": dev.kind, "major": dev.major, "minor": dev.minor,
             "fileMode": dev.mode, "uid": 0, "gid": 0}
            for dev, path, _perms in ro.device_nodes(host, devices)
        ]  # fmt: skip
    if host.get("Sysctls"):
        linux["sysctl"] = {str(k): str(v) for k, v in host["Sysctls"].items()}
    spec: dict[str, Any] = {
        "ociVersion": "1.1.0",
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": readonly_rootfs},
    }
    if host.get("UTSMode") != "host":
        # With the host's uts namespace the runtime must set no name at all.
        spec["hostname"] = hostname
        if config.get("Domainname"):
            spec["domainname"] = str(config["Domainname"])
    spec["mounts"] = mounts
    spec["linux"] = linux
    return spec


def _shm(
    mounts: list[dict[str, Any]], host: Mapping[str, Any], source: str
) -> list[dict[str, Any]]:
    """/dev/shm: --shm-size sets its size; --ipc host|container:X binds that one."""
    size = int(host.get("ShmSize") or 0)
    out = []
    for m in mounts:
        if m["destination"] == "/dev/shm" and host.get("IpcMode") == "none":
            continue  # Docker's --ipc none: a private ipc namespace and no /dev/shm
        if m["destination"] == "/dev/shm":
            if source:
                m = {"destination": "/dev/shm", "type": "bind", "source": source,
                     "options": ["rbind", "rprivate"]}  # fmt: skip
            elif size and size != 64 << 20:  # the default's option stays as it is
                opts = [o for o in m["options"] if not o.startswith("size=")]
                m = {**m, "options": [*opts, f"size={size}"]}
        out.append(m)
    return out


# ------------------------------------------------------------ seccomp files


def docker_profile_to_oci(profile: Mapping[str, Any], caps: Sequence[str]) -> dict[str, Any]:
    """Accept Docker's seccomp profile format as well as OCI's linux.seccomp.

    Docker's adds `archMap` and per-rule `includes`/`excludes` on capabilities;
    a rule applies when its required capabilities are all granted and none of
    its excluded ones is.
    """
    if not isinstance(profile, Mapping) or "defaultAction" not in profile:
        raise InvalidArgument("seccomp profile: missing defaultAction")
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        arches.append(entry.get("architecture"))
        arches += entry.get("subArchitectures") or []
    if arches:
        out["architectures"] = [a for a in arches if isinstance(a, str)]
    have = set(caps)
    rules = []
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, Mapping):
            raise InvalidArgument("seccomp profile: a syscalls entry is not an object")
        inc = (rule.get("includes") or {}).get("caps") or []
        exc = (rule.get("excludes") or {}).get("caps") or []
        if any(c not in have for c in inc) or any(c in have for c in exc):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        r: dict[str, Any] = {"names": list(names), "action": rule.get("action")}
        for key in ("args", "errnoRet"):
            if rule.get(key) is not None:
                r[key] = rule[key]
        rules.append(r)
    out["syscalls"] = rules
    return out
