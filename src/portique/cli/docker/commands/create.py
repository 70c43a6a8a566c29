"""`portique create IMAGE [COMMAND] [ARG...]` (and the flags `run` shares)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from portique.engine import options as opt
from portique.errors import InvalidArgument

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def add_arguments(parser: argparse.ArgumentParser, *, run: bool = False) -> None:
    # Docker's -h is --hostname; --help stays.
    parser.conflict_handler = "resolve"
    parser._optionals.conflict_handler = "resolve"
    add = parser.add_argument
    if run:
        add("-d", "--detach", action="store_true", help="run in the background, print the id")
        add("--sig-proxy", default="true", help="proxy received signals to the process")
        add("--detach-keys", default="ctrl-p,ctrl-q", help="key sequence for detaching")
    add("-a", "--attach", action="append", default=[], help="attach to STDIN, STDOUT or STDERR")
    add("-i", "--interactive", action="store_true", help="keep STDIN open")
    add("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    add("--rm", action="store_true", help="remove the container when it exits")
    add("--name", default="", help="assign a name to the container")
    add("-e", "--env", action="append", default=[], help="set environment variables")
    add("--env-file", action="append", default=[], help="read environment variables from a file")
    add("-w", "--workdir", default="", help="working directory inside the container")
    add("-u", "--user", default="", help="username or UID (format: <name|uid>[:<group|gid>])")
    add("--entrypoint", default=None, help="overwrite the default ENTRYPOINT of the image")
    add("-h", "--hostname", default="", help="container host name")
    add("-l", "--label", action="append", default=[], help="set meta data on a container")
    add("-v", "--volume", action="append", default=[], help="bind mount a volume")
    add("--mount", action="append", default=[], help="attach a filesystem mount")
    add("--tmpfs", action="append", default=[], help="mount a tmpfs directory")
    add("--read-only", action="store_true", help="mount the root filesystem read only")
    add("-m", "--memory", default="", help="memory limit")
    add("--memory-swap", default="", help="swap limit equal to memory plus swap: -1 for unlimited")
    add("--cpus", default="", help="number of CPUs")
    add(
        "-c",
        "--cpu-shares",
        type=_int("--cpu-shares"),
        default=0,
        help="CPU shares (relative weight)",
    )
    add("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)")
    add(
        "--pids-limit",
        type=_int("--pids-limit"),
        default=None,
        help="tune the pids limit (-1 unlimited)",
    )
    add("--ulimit", action="append", default=[], help="ulimit options")
    add("--cap-add", action="append", default=[], help="add Linux capabilities")
    add("--cap-drop", action="append", default=[], help="drop Linux capabilities")
    add("--privileged", action="store_true", help="give extended privileges to this container")
    add("--security-opt", action="append", default=[], help="security options")
    add("--init", action="store_true", help="run an init inside the container that reaps processes")
    add(
        "--restart", default="no", help="restart policy: no, on-failure[:N], always, unless-stopped"
    )
    add("--stop-signal", default="", help="signal to stop the container")
    add("--health-cmd", default="", help="command to run to check health")
    add("--health-interval", default="", help="time between running the check (ms|s|m|h)")
    add("--health-timeout", default="", help="maximum time to allow one check to run")
    add("--health-retries", type=_int("--health-retries"), default=None, help="failures to report")
    add("--health-start-period", default="", help="start period before retries count")
    add("--health-start-interval", default="", help="time between checks in the start period")
    add("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")
    add(
        "--stop-timeout",
        type=_int("--stop-timeout"),
        default=None,
        help="timeout (seconds) to stop",
    )
    add(
        "--network",
        "--net",
        action="append",
        default=[],
        help="connect a container to a network (bridge, none, host, container:NAME, NAME);"
        " repeat to join several",
    )
    add(
        "--network-alias",
        "--net-alias",
        action="append",
        default=[],
        help="add a network-scoped alias for the container",
    )
    add("--ip", default="", help="IPv4 address on the (first) network")
    add("--add-host", action="append", default=[], help="add a custom host-to-IP mapping (host:ip)")
    add("--dns", action="append", default=[], help="set custom DNS servers")
    add("--dns-search", action="append", default=[], help="set custom DNS search domains")
    add("--dns-option", "--dns-opt", action="append", default=[], help="set DNS options")
    add(
        "-P", "--publish-all", action="store_true", help="publish all exposed ports to random ports"
    )
    add(
        "--pull", default="missing", help='pull image before running ("always", "missing", "never")'
    )
    add(
        "-p",
        "--publish",
        action="append",
        default=[],
        help="publish a container's port(s) to the host",
    )
    add("--platform", default="", help="set platform if server is multi-platform capable")
    _add_more(add)
    add("image", help="the image to run")
    add("command", nargs=argparse.REMAINDER, help="command and arguments")


def _add_more(add: Any) -> None:
    """Issue 13's further flags (engine/run_opts.py parses their values)."""
    many = {"action": "append", "default": []}
    add("--group-add", **many, help="add additional groups to join")
    add("--device", **many, help="add a host device to the container")
    for name in ("read-bps", "write-bps", "read-iops", "write-iops"):
        add(f"--device-{name}", **many, help=f"limit {name} of a device (PATH:RATE)")
    add("--shm-size", default="", help="size of /dev/shm")
    add("--sysctl", **many, help="sysctl options (KEY=VALUE)")
    add("--domainname", default="", help="container NIS domain name")
    add("--label-file", **many, help="read in a line delimited file of labels")
    add("--log-driver", default="", help="logging driver: json-file, local or none")
    add("--log-opt", **many, help="log driver options (max-size, max-file)")
    add("--pid", default="", help="PID namespace to use (host, container:NAME)")
    add("--ipc", default="", help="IPC mode (host, private, shareable, container:NAME)")
    add("--uts", default="", help="UTS namespace to use (host)")
    add("--userns", default="", help="user namespace to use (host)")
    add("--cgroupns", default="", help="cgroup namespace to use (host, private)")
    add("--cgroup-parent", default="", help="parent cgroup, nested under portique's")
    add("--cidfile", default="", help="write the container ID to the file")
    add("--expose", **many, help="expose a port or a range of ports")
    add("--volumes-from", **many, help="mount volumes from the specified container(s)")
    add("--link", **many, help="add link to another container (NAME[:ALIAS])")
    add("--oom-score-adj", type=_int("--oom-score-adj"), default=None, help="tune OOM preferences")
    add("--oom-kill-disable", action="store_true", help="disable OOM killer")
    add("--memory-reservation", default="", help="memory soft limit")
    add(
        "--memory-swappiness",
        type=_int("--memory-swappiness"),
        default=None,
        help="tune memory swappiness (0 to 100)",
    )
    add("--cpu-period", type=_int("--cpu-period"), default=0, help="CFS period (microseconds)")
    add("--cpu-quota", type=_int("--cpu-quota"), default=0, help="CFS quota (microseconds)")
    add("--cpuset-mems", default="", help="memory nodes in which to allow execution")
    add("--blkio-weight", type=_int("--blkio-weight"), default=0, help="block IO weight 10-1000")
    add("--mac-address", default="", help="container MAC address")
    add("--runtime", default="", help="OCI runtime for this container (runc, crun, path)")
    add("--storage-opt", **many, help="storage driver options (refused: not supported)")
    add("-q", "--quiet", action="store_true", help="suppress the pull output")
    add("--gpus", default="", help="GPU devices (refused: no GPU support)")


def _int(flag: str) -> Any:
    def conv(value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'invalid argument "{value}" for "{flag}" flag: strconv.ParseInt: parsing "{value}": invalid syntax'
            ) from None

    return conv


def build_request(
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """Docker's Config, HostConfig and NetworkingConfig from the flags, as the API
    carries them; every bad value is one InvalidArgument."""
    env: list[str] = []
    for path in args.env_file:
        env += opt.read_env_file(path)
    env += opt.parse_env(args.env)
    memory = opt.parse_memory(args.memory)
    swap = opt.parse_memory_swap(args.memory_swap, memory)
    nano = opt.parse_cpus(args.cpus)
    cpuset = opt.parse_cpuset(args.cpuset_cpus)
    ulimits = [opt.parse_ulimit(u) for u in args.ulimit]
    restart = opt.parse_restart(args.restart)
    opt.parse_security_opts(args.security_opt)
    opt.parse_user(args.user)
    from portique.engine import mount_opts

    # docker CLI 23+: `-v .:/src`, `-v ./data:/data`, `--mount src=.` name the cwd.
    cwd = os.getcwd()
    args.volume = [mount_opts.resolve_volume_source(v, cwd) for v in args.volume]
    args.mount = [mount_opts.resolve_mount_source(m, cwd) for m in args.mount]
    for v in args.volume:
        opt.parse_volume(v)
    explicit = [opt.parse_mount(m) for m in args.mount]
    for t in args.tmpfs:
        opt.parse_tmpfs(t)
    stop_signal = ""
    if args.stop_signal:
        opt.parse_signal(args.stop_signal)
        stop_signal = args.stop_signal
    from portique.engine import network as net

    networks = ["bridge" if n == "default" else n for n in args.network] or ["bridge"]
    network = networks[0]
    endpoints = _endpoints(args, networks)
    bindings: dict[str, Any] = {}
    exposed: dict[str, Any] = {}
    if (args.publish or args.publish_all) and network.startswith("container:"):
        raise InvalidArgument(
            "conflicting options: port publishing and the container type network mode"
        )
    if args.publish and network not in net.LOCAL_MODES:
        bindings, exposed = net.port_bindings(args.publish)
    attach = [a.lower() for a in args.attach]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise InvalidArgument(
                f"invalid argument {a!r} for -a: valid streams are STDIN, STDOUT and STDERR"
            )
    detach = bool(getattr(args, "detach", False))
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else []
    config: dict[str, Any] = {
        "Hostname": args.hostname,
        "Domainname": "",
        "User": args.user,
        "AttachStdin": (not detach and args.interactive) or "stdin" in attach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "StdinOnce": args.interactive and not detach,
        "Env": env,
        "Cmd": list(args.command) or None,
        "Image": args.image,
        "Volumes": None,
        "WorkingDir": args.workdir,
        "Entrypoint": entrypoint,
        "Labels": opt.parse_labels(args.label),
        "StopSignal": stop_signal or None,
        "ExposedPorts": exposed or None,
    }
    if args.stop_timeout is not None:
        config["StopTimeout"] = args.stop_timeout
    from portique.engine.health import from_flags

    healthcheck = from_flags(
        cmd=args.health_cmd,
        interval=args.health_interval,
        timeout=args.health_timeout,
        retries=args.health_retries,
        start_period=args.health_start_period,
        start_interval=args.health_start_interval,
        none=args.no_healthcheck,
    )
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    host: dict[str, Any] = {
        "Binds": list(args.volume) or None,
        "Mounts": [m.as_docker() for m in explicit] or None,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in args.tmpfs} or None,
        "NetworkMode": network,
        "RestartPolicy": restart.as_docker(),
        "AutoRemove": args.rm,
        "CapAdd": args.cap_add or None,
        "CapDrop": args.cap_drop or None,
        "Privileged": args.privileged,
        "ReadonlyRootfs": args.read_only,
        "SecurityOpt": args.security_opt or None,
        "Init": args.init or None,
        "Memory": memory,
        "MemorySwap": swap,
        "NanoCpus": nano,
        "CpuShares": args.cpu_shares,
        "CpusetCpus": cpuset,
        "PidsLimit": args.pids_limit,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in ulimits] or None,
        "LogConfig": {"Type": "json-file", "Config": {}},
        "PortBindings": bindings,
        "PublishAllPorts": args.publish_all,
        "ExtraHosts": list(args.add_host) or None,
        "Dns": list(args.dns),
        "DnsSearch": list(args.dns_search),
        "DnsOptions": list(args.dns_option),
    }
    _more_request(args, config, host)
    networking = {"EndpointsConfig": endpoints} if endpoints else None
    return config, host, networking


def _checked(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidArgument(message)


def _more_request(args: argparse.Namespace, config: dict[str, Any], host: dict[str, Any]) -> None:
    """Issue 13's further flags into Config and HostConfig, checked as Docker's CLI
    and daemon check them."""
    from portique.engine import run_opts as ro

    ro.refuse_unsupported(args)
    labels = opt.parse_labels(ro.read_label_files(args.label_file))
    labels.update(config["Labels"])
    config["Labels"] = labels
    if args.domainname:
        opt.check_hostname(args.domainname, "domainname")
        config["Domainname"] = args.domainname
    if args.expose:
        exposed = dict(config.get("ExposedPorts") or {})
        for spec in args.expose:
            exposed.update({k: {} for k in ro.expose_ports(spec)})
        config["ExposedPorts"] = exposed
    modes = ro.namespace_modes(args)
    if modes["UTSMode"] == "host" and args.hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    host.update(modes)
    host["Sysctls"] = ro.parse_sysctls(args.sysctl) or None
    ro.check_sysctls(host["Sysctls"] or {}, host)
    host["GroupAdd"] = list(args.group_add) or None
    for g in args.group_add:
        _checked(bool(g) and ":" not in g and "\0" not in g, f"invalid group: {g!r}")
    host["Devices"] = [ro.parse_device(d) for d in args.device] or None
    for attr, (flag, key, in_bytes) in ro.THROTTLE_FLAGS.items():
        host[key] = [ro.parse_throttle(v, flag, bytes_rate=in_bytes) for v in getattr(args, attr)]
    host["ShmSize"] = 64 << 20  # Docker's default, shown by inspect
    if args.shm_size:
        shm = opt.parse_size(args.shm_size, "--shm-size")
        _checked(shm > 0, 'invalid argument for "--shm-size": the size must be above 0')
        host["ShmSize"] = shm
    host["IpcMode"] = host["IpcMode"] or "private"  # dockerd's default-ipc-mode
    host["LogConfig"] = ro.parse_log_config(args.log_driver, args.log_opt)
    if args.oom_score_adj is not None:
        _checked(
            -1000 <= args.oom_score_adj <= 1000,
            f"invalid value {args.oom_score_adj}, range for oom score adj is [-1000, 1000]",
        )
        host["OomScoreAdj"] = args.oom_score_adj
    host["OomKillDisable"] = args.oom_kill_disable or None
    if args.memory_reservation:
        res = opt.parse_size(args.memory_reservation, "--memory-reservation")
        _checked(
            not host["Memory"] or res <= host["Memory"],
            "minimum memory limit can not be less than memory reservation limit, see usage",
        )
        host["MemoryReservation"] = res
    if args.memory_swappiness is not None and args.memory_swappiness != -1:
        _checked(
            0 <= args.memory_swappiness <= 100,
            f"invalid value: {args.memory_swappiness}, valid memory swappiness range is 0-100",
        )
        host["MemorySwappiness"] = args.memory_swappiness
    if args.cpu_period or args.cpu_quota:
        _checked(
            not host["NanoCpus"],
            "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        )
    if args.cpu_period:
        _checked(
            1000 <= args.cpu_period <= 1_000_000,
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        )
        host["CpuPeriod"] = args.cpu_period
    if args.cpu_quota:
        _checked(
            args.cpu_quota >= 1000 or args.cpu_quota == -1,
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        )
        host["CpuQuota"] = args.cpu_quota
    if args.cpuset_mems:
        host["CpusetMems"] = opt.parse_cpuset(args.cpuset_mems, "--cpuset-mems")
    if args.blkio_weight:
        _checked(10 <= args.blkio_weight <= 1000, "range of blkio weight is from 10 to 1000")
        host["BlkioWeight"] = args.blkio_weight
    if args.cgroup_parent:
        host["CgroupParent"] = ro.parse_cgroup_parent(args.cgroup_parent)
    if args.runtime:
        host["Runtime"] = ro.parse_runtime(args.runtime)
    host["VolumesFrom"] = list(args.volumes_from) or None
    host["Links"] = list(args.link) or None
    if args.mac_address:
        config["MacAddress"] = ro.parse_mac(args.mac_address)


def _endpoints(args: argparse.Namespace, networks: list[str]) -> dict[str, Any]:
    """--network-alias and --ip (for the first network) and further --networks, as
    Docker's NetworkingConfig.EndpointsConfig."""
    from portique.engine import network as net

    first = networks[0]
    local = first in net.LOCAL_MODES or first.startswith("container:")
    if len(networks) > 1 and any(
        n in net.LOCAL_MODES or n.startswith("container:") for n in networks
    ):
        raise InvalidArgument(
            "conflicting options: none, host and container: cannot join more networks"
        )
    if (args.network_alias or args.ip) and local:
        raise InvalidArgument(
            "conflicting options: --network-alias and --ip need a bridge or user-defined network"
        )
    if args.ip and first == "bridge":
        raise InvalidArgument(
            "user specified IP address is supported on user defined networks only"
        )
    if args.network_alias and first == "bridge":
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    eps: dict[str, Any] = {}
    if args.network_alias or args.ip:
        eps[first] = net.endpoint_entry(args.network_alias, args.ip or None)
    for n in networks[1:]:
        eps.setdefault(n, net.endpoint_entry([], None))
    return eps


def create_from_args(eng: Engine, args: argparse.Namespace) -> Any:
    """What `create` and `run` send the engine: the API's create, field for field."""
    from portique.engine import containers

    config, host, networking = build_request(args)
    return containers.create(
        eng,
        config,
        host,
        networking,
        name=args.name,
        pull=args.pull,
        progress=_progress if sys.stderr.isatty() and not args.quiet else None,
        pulling=None if args.quiet else _pulling,
    )


def _progress(event: Any) -> None:
    text = getattr(event, "message", None) or str(event)
    sys.stderr.write(f"{text}\n")


def _pulling(ref: str) -> None:
    sys.stderr.write(f"Unable to find image '{ref}' locally\n")


def check_cidfile(path: str) -> None:
    """Docker refuses a --cidfile that exists (another container may own it)."""
    if path and os.path.exists(path):
        raise InvalidArgument(
            f"container ID file found, make sure the other container isn't running or delete {path}"
        )


def write_cidfile(path: str, cid: str) -> None:
    if path:
        from pathlib import Path

        from portique.fileio import atomic_write

        atomic_write(Path(path), cid.encode(), fsync=False)


def run(eng: Engine, args: argparse.Namespace) -> int:
    check_cidfile(args.cidfile)
    row = create_from_args(eng, args)
    write_cidfile(args.cidfile, row.id)
    print(row.id)
    return 0
