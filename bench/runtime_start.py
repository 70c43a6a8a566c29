#!/usr/bin/env python3
"""Start-to-exit of /bin/true from a busybox bundle: portique-runtime vs runc vs crun,
alone and under its callers (dockerd, containerd's CRI).

Usage (as root, from the repository):
    .venv/bin/python bench/runtime_start.py [--runs 30] [--warmup 3] [--baseline OTHER/src]
        [--only runtime|callers] [--cgfix ../shared/peers/cgfix.sh] [--pod-runs 20]

Builds one busybox bundle (the same config.json for every runtime: what
`portique-runtime spec` writes, with args ["/bin/true"] and no terminal),
checks each runtime can run it once, then times `RUNTIME --root TMP run -b
BUNDLE ID` with hyperfine (-N: no shell in between) in one hyperfine
invocation so the peers are measured side by side. A foreground `run`
deletes the container when it exits, so the same id is reused. Prints each
median and portique-runtime's ratio to each peer, and the import time of
portique-runtime's entry point (`python -X importtime`). portique-runtime is
timed twice: as pip installed it (the console script, with site) and through
the lean launcher of portique.cli.runc.launcher (`python -IS`).

A runtime that cannot run the bundle on this host (crun 1.8 refuses cgroup
v1 hybrid layouts) is reported and left out; nothing here changes the host.

Under its callers (bench/runtime_callers.py): `docker run --rm --runtime R
--network none busybox true` on one private dockerd, R = portique (the lean
launcher), runc and crun, timed by hyperfine; and a Kubernetes pod's start
on a private containerd's CRI (RunPodSandbox, CreateContainer,
StartContainer of one container) with a handler per runtime, timed in
process, the handlers taking turns. crun runs only with `--cgfix SCRIPT`
(../shared/peers/cgfix.sh, the one allowed change to the host's cgroup
mounts), turned on around crun's rows and off again; runc is timed again in
that window, so crun's ratio compares like with like.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from portique.runtime.default_spec import default_spec  # noqa: E402

BUSYBOX = Path("/bin/busybox")


def make_bundle(dest: Path, args: list[str] | None = None, seccomp: bool = False) -> Path:
    rootfs = dest / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in ("true", "sh", "sleep"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    spec = default_spec()
    spec["process"]["args"] = args or ["/bin/true"]
    # The oldest version every runtime here reads (crun 1.8 refuses "1.2.0"
    # with "unknown version specified"); nothing in this config is newer.
    spec["ociVersion"] = "1.0.2"
    spec["process"]["terminal"] = False
    if seccomp:
        # What dockerd and containerd pass: a default profile (portique's, an
        # allow-list of ~350 calls in the shape of Docker's).
        from portique.runtime.seccomp_default import default_profile

        spec["linux"]["seccomp"] = default_profile()
    (dest / "config.json").write_text(json.dumps(spec, indent=2))
    return dest


def portique_runtime() -> list[str]:
    script = Path(sys.executable).with_name("portique-runtime")
    if script.exists():
        return [str(script)]
    venv = REPO / ".venv/bin/portique-runtime"
    if venv.exists():
        return [str(venv)]
    return [sys.executable, "-m", "portique.cli.runc.main"]


# What `portique-runtime run` imports beyond --version (the runtime library).
RUN_PATH_MODULES = (
    "portique.cli.runc.main",
    "portique.cli.runc.commands.run",
    "portique.runtime.container",
    "portique.runtime.init",
    "portique.oci.runtime",
)


def import_time_ms(python: str, code: list[str]) -> tuple[float, float]:
    """(self time of portique.* modules, self time of all modules) in ms, from
    `python -X importtime CODE...`."""
    proc = subprocess.run(
        [python, "-X", "importtime", *code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    ours = total = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:") :].split("|")]
        if not parts[0].isdigit():
            continue
        self_us = int(parts[0])
        total += self_us
        if parts[2].startswith("portique"):
            ours += self_us
    return ours / 1000, total / 1000


def hyperfine(
    base: Path,
    label: str,
    commands: dict[str, list[str]],
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """One hyperfine run over `commands`, side by side; results by name."""
    export = base / f"hyperfine-{label}.json"
    hf = [
        "hyperfine",
        "-N",
        "--warmup",
        str(args.warmup),
        "--runs",
        str(args.runs),
        "--export-json",
        str(export),
        "--style",
        "basic",
    ]
    for name, argv in commands.items():
        hf += ["--command-name", name, " ".join(argv)]
    subprocess.run(hf, check=True, stdin=subprocess.DEVNULL, env=env)
    return {r["command"]: r for r in json.loads(export.read_text())["results"]}


def report(title: str, results: dict[str, dict[str, float]]) -> None:
    """Wall-clock median, mean, min, and CPU (user + system, mean, children
    included): on a shared machine the CPU column moves far less with the load."""
    print()
    print(title)
    print(f"  {'runtime':<28}{'median ms':>10}{'mean ms':>10}{'min ms':>10}{'cpu ms':>10}")
    for name, r in results.items():
        cpu = (r.get("user", 0.0) + r.get("system", 0.0)) * 1000
        print(
            f"  {name:<28}{r['median'] * 1000:>10.1f}{r['mean'] * 1000:>10.1f}"
            f"{r['min'] * 1000:>10.1f}{cpu:>10.1f}"
        )
    for ours in (n for n in results if n.startswith("portique")):
        median = results[ours]["median"]
        for peer in ("runc", "crun"):
            if peer in results:
                print(f"  {ours} / {peer}: {median / results[peer]['median']:.2f}x (median)")
            else:
                print(f"  {ours} / {peer}: not measured ({peer} missing or refused the bundle)")


def report_ratios(title: str, results: dict[str, dict[str, float]], unit: str = "ms") -> None:
    print()
    print(title)
    print(f"  {'runtime':<18}{'median ms':>10}{'mean ms':>10}{'min ms':>10}")
    for name, r in results.items():
        print(
            f"  {name:<18}{r['median'] * 1000:>10.1f}{r['mean'] * 1000:>10.1f}"
            f"{r['min'] * 1000:>10.1f}"
        )
    if "runc" in results:
        for name in results:
            if name != "runc":
                ratio = results[name]["median"] / results["runc"]["median"]
                print(f"  {name} / runc: {ratio:.2f}x (median)")


def runs_bundle(runtime: str, base: Path) -> bool:
    """Whether `runtime` runs the busybox bundle on this host as it is now
    (crun 1.8 refuses a v1 hybrid layout with controllers on cgroup2)."""
    bundle = make_bundle(base / "bundle")
    proc = subprocess.run(
        [runtime, "--root", str(base / "state"), "run", "-b", str(bundle), "probe"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0


def callers(args: argparse.Namespace) -> int:
    """dockerd's `docker run --rm` and a CRI pod start with each runtime."""
    import runtime_callers as rc

    from portique.cli.runc.launcher import write_launcher

    with tempfile.TemporaryDirectory(prefix="portique-bench-callers-") as tmp:
        base = Path(tmp)
        write_launcher(str(base / "portique-runtime"))
        runtimes = {"portique": str(base / "portique-runtime")}
        crun = shutil.which("crun")
        if crun:
            runtimes["crun"] = crun
        images = rc.make_images(base / "images")
        run = ["run", "--rm", "--network", "none"]
        docker_rows: list[tuple[str, dict[str, dict[str, float]]]] = []
        cri_rows: list[tuple[str, dict[str, dict[str, float]]]] = []
        have_cri = True
        try:
            import cri_api  # noqa: F401
        except ImportError:
            have_cri = False
            print("CRI: not measured (the CRI stubs come with `pip install -e '.[test]'`)")
        with contextlib.ExitStack() as stack:
            env = None
            if shutil.which("dockerd"):
                env = stack.enter_context(rc.dockerd(base / "dockerd", images[0], runtimes))
            else:
                print("dockerd: not measured (scripts/setup.sh installs docker.io)")
            cri = None
            if have_cri:
                cri = rc.CRI(base / "cri", {**runtimes, "runc": "/usr/bin/runc"}, images)
                stack.callback(cri.close)

            def measure(names: list[str], label: str) -> None:
                if env is not None:
                    cmds = {n: ["docker", *run, "--runtime", n, "busybox", "true"] for n in names}
                    docker_rows.append((label, hyperfine(base, f"docker-{label}", cmds, args, env)))
                if cri is not None:
                    times = rc.time_pods(cri, names, args.pod_runs, args.warmup)
                    cri_rows.append((label, {n: rc.summary(t) for n, t in times.items()}))

            if crun and runs_bundle(crun, base / "probe"):
                measure(["portique", "runc", "crun"], "host layout")
            else:
                measure(["portique", "runc"], "host layout")
                if crun and args.cgfix:
                    with rc.cgfix(args.cgfix):
                        measure(["runc", "crun"], "cgfix on")
                elif crun:
                    print("crun: not measured (it refuses this host's layout; give --cgfix SCRIPT)")
    for label, res in docker_rows:
        report_ratios(f"docker run --rm --network none busybox true ({label})", res)
    for label, res in cri_rows:
        report_ratios(
            f"CRI: RunPodSandbox + CreateContainer + StartContainer ({label}, "
            f"{args.pod_runs} runs each)",
            res,
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", choices=("runtime", "callers"), default=None)
    parser.add_argument("--pod-runs", type=int, default=20, help="CRI pod starts per handler")
    parser.add_argument(
        "--cgfix", default=None, help="path of ../shared/peers/cgfix.sh, to time crun"
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also time the lean launcher over another checkout's src/ (before/after a change)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("runtime_start.py: run me as root", file=sys.stderr)
        return 1
    if shutil.which("hyperfine") is None:
        print("runtime_start.py: hyperfine is not installed", file=sys.stderr)
        return 1
    # The launcher runs python with -I, which ignores this anyway; the
    # daemons and everything else should not run without byte code either.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"load average at start: {os.getloadavg()}")
    status = 0
    if args.only != "callers":
        status = runtime_alone(args)
    if args.only != "runtime" and status == 0:
        status = callers(args)
    print(f"load average at end: {os.getloadavg()}")
    return status


def runtime_alone(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="portique-bench-") as tmp:
        base = Path(tmp)
        bundle = make_bundle(base / "bundle")
        candidates = {"portique-runtime": portique_runtime()}
        # The same CLI through the lean launcher (`python -IS`, no site).
        from portique.cli.runc.launcher import write_launcher

        write_launcher(str(base / "portique-runtime-lean"))
        candidates["portique-rt-lean"] = [str(base / "portique-runtime-lean")]
        if args.baseline:
            from portique.cli.runc.launcher import import_roots, launcher_text

            roots = [os.path.abspath(args.baseline), *import_roots()[1:]]
            text = launcher_text(sys.executable, roots)
            if not (Path(args.baseline) / "portique/cli/runc/quick.py").exists():
                # A tree from before the fast `state` entry point.
                text = text.replace("portique.cli.runc.quick", "portique.cli.runc.main")
            (base / "portique-baseline").write_text(text)
            (base / "portique-baseline").chmod(0o755)
            candidates["portique-baseline"] = [str(base / "portique-baseline")]
        for peer in ("runc", "crun"):
            path = shutil.which(peer)
            if path:
                candidates[peer] = [path]
        commands: dict[str, list[str]] = {}
        for name, exe in candidates.items():
            argv = [
                *exe,
                "--root",
                str(base / f"state-{name}"),
                "run",
                "-b",
                str(bundle),
                f"bench-{name}",
            ]
            probe = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if probe.returncode != 0:
                print(
                    f"{name}: cannot run the bundle here (exit {probe.returncode}): "
                    f"{(probe.stderr or probe.stdout).strip()}"
                )
                continue
            commands[name] = argv
        if not any(n.startswith("portique") for n in commands):
            print("portique-runtime could not run the bundle: nothing to compare")
            return 1
        results = hyperfine(base, "start", commands, args)
        seccomp_results = seccomp_rows(commands, args)
        # A running container per runtime, for exec and state latency.
        sleeper = make_bundle(base / "sleeper", ["sleep", "600"])
        running: dict[str, list[str]] = {}
        try:
            for name, argv in commands.items():
                exe, root = argv[: argv.index("--root")], argv[argv.index("--root") + 1]
                cid = f"bench-sleep-{name}"
                subprocess.run(
                    [*exe, "--root", root, "run", "-d", "-b", str(sleeper), cid],
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                )
                running[name] = [*exe, "--root", root]
            execs = {n: [*b, "exec", f"bench-sleep-{n}", "/bin/true"] for n, b in running.items()}
            states = {n: [*b, "state", f"bench-sleep-{n}"] for n, b in running.items()}
            exec_results = hyperfine(base, "exec", execs, args)
            # The interpreter's own start (the launcher's python, -I -S): the floor.
            states["python -IS -c pass"] = [sys.executable, "-I", "-S", "-c", "pass"]
            state_results = hyperfine(base, "state", states, args)
        finally:
            for name, b in running.items():
                subprocess.run([*b, "delete", "--force", f"bench-sleep-{name}"], check=False)
    for title, res in (
        ("run /bin/true (start to exit)", results),
        (
            "run /bin/true with a default seccomp profile (Docker-shaped allow-list)",
            seccomp_results,
        ),
        ("exec /bin/true into a running container", exec_results),
        ("state of a running container", state_results),
    ):
        report(title, res)
    print()
    for label, code in (
        ("--version", ["-m", "portique.cli.runc.main", "--version"]),
        ("run path", ["-c", "import " + ", ".join(RUN_PATH_MODULES)]),
    ):
        own, total = import_time_ms(sys.executable, code)
        print(
            f"import time ({label}, python -X importtime): portique modules {own:.1f} ms, "
            f"all modules {total:.1f} ms"
        )
    return 0


def seccomp_rows(
    commands: dict[str, list[str]], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """`run` of a bundle with a seccomp profile: portique with its compiled-filter
    cache (runtime/seccomp_cache.py) and with the cache refused (its directory
    writable by others: every start compiles), beside the peers."""
    with tempfile.TemporaryDirectory(prefix="portique-bench-sc-") as tmp:
        base = Path(tmp)
        bundle = make_bundle(base / "bundle", seccomp=True)
        cmds: dict[str, list[str]] = {}
        for name, argv in commands.items():
            if name == "portique-runtime":
                continue  # the lean launcher's row is the one callers get
            exe = argv[: argv.index("--root")]
            variants = [(name, base / f"state-{name}")]
            if name == "portique-rt-lean":
                nocache = base / "state-nocache"
                (nocache / "@seccomp").mkdir(parents=True)
                os.chmod(nocache / "@seccomp", 0o777)  # refused: compiled every time
                variants.append(("portique-rt-lean, no cache", nocache))
            for label, root in variants:
                cid = f"bench-sc-{len(cmds)}"
                cmd = [*exe, "--root", str(root), "run", "-b", str(bundle), cid]
                probe = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                if probe.returncode != 0:
                    print(f"{label}: cannot run the seccomp bundle: {probe.stderr.strip()[-200:]}")
                    continue
                cmds[label] = cmd
        if not cmds:
            return {}
        return hyperfine(base, "seccomp", cmds, args)


if __name__ == "__main__":
    raise SystemExit(main())
