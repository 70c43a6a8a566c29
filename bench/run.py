#!/usr/bin/env python3
"""`portique run --rm busybox true` end to end, and `exec` latency, against the peers.

Usage (as root, from the repository):
    .venv/bin/python bench/run.py [--runs 20] [--warmup 3] [--baseline OTHER/.venv/bin/portique]

`--baseline` adds another installation's `portique` (another checkout, e.g.
the commit before a change) to the same hyperfine calls, on the same engine
root, as the row "before": a before/after comparison measured in one run.

Uses a private engine root (a temporary directory) with a busybox image
imported from Debian's busybox-static, so nothing of /var/lib/portique is
touched. Peers (podman, docker with a reachable daemon, containerd's ctr) are
measured in the same hyperfine invocation when they are installed and can
import the same busybox tarball; otherwise their row says why not. Prints
medians, portique's ratio to each peer, the monitor's memory (PSS) and the
import time of the CLI's `run` path (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
PORTIQUE = str(Path(sys.executable).with_name("portique"))

from peers import private_dockerd  # noqa: E402


def busybox_tar(dest: Path) -> Path:
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


def quiet(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> bool:
    try:
        return (
            subprocess.run(
                cmd, env=env, capture_output=True, timeout=timeout, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def peer_commands(
    tar: Path,
    ctr_address: str | None,
    ctr_image: str | None,
    docker_env: dict[str, str] | None,
) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """name -> row -> argv for each usable peer (rows: nonet, bridge, detach, exec, and
    "image": [the image name]); name -> reason for the others."""
    usable: dict[str, dict[str, list[str]]] = {}
    missing: dict[str, str] = {}
    if shutil.which("podman"):
        image = "pq-bench-busybox"
        # crun 1.8 refuses this host's cgroup v1 hybrid layout, and podman's
        # default rlimits (nofile, nproc 1048576) exceed this session's hard
        # limits: runc, and rlimits within them.
        pm = ["podman", "--runtime", "runc"]
        lim = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
        podman = [*pm, "run", "--rm", "--network", "none", *lim, image, "/bin/true"]
        if not quiet(["podman", "import", str(tar), image]):
            missing["podman"] = "installed, but cannot import the busybox image"
        elif not quiet(podman):
            missing["podman"] = "installed, but cannot run a container here"
        else:
            usable["podman"] = {
                "image": [image],
                "nonet": podman,
                "bridge": [*pm, "run", "--rm", *lim, image, "/bin/true"],
                "detach": [*pm, "run", "-d", *lim, image, "/bin/true"],
                "sleeper": [*pm, "run", "-d", "--network", "none", *lim],
            }
    else:
        missing["podman"] = "not installed"
    if docker_env is not None:
        image = "docker.io/library/busybox:latest"
        usable["docker"] = {
            "image": [image],
            "nonet": ["docker", "run", "--rm", "--network", "none", image, "/bin/true"],
            "bridge": ["docker", "run", "--rm", image, "/bin/true"],
            "detach": ["docker", "run", "-d", image, "/bin/true"],
            "sleeper": ["docker", "run", "-d", "--network", "none"],
        }
    elif shutil.which("dockerd"):
        missing["docker"] = "a private dockerd did not start (or --no-docker)"
    else:
        missing["docker"] = "not installed"
    if not (shutil.which("ctr") and shutil.which("containerd")):
        missing["ctr"] = "not installed"
    elif ctr_address is None:
        missing["ctr"] = "containerd would not start"
    elif ctr_image is None:
        missing["ctr"] = "cannot import the busybox image into containerd"
    else:
        run = ["ctr", "-a", ctr_address, "run", "--rm", ctr_image, "pq-bench-ctr", "/bin/true"]
        usable["ctr"] = {"image": [ctr_image], "nonet": run}
    return usable, missing


@contextlib.contextmanager
def private_containerd(tmp: Path) -> Iterator[str | None]:
    """A containerd of our own (root, state and socket in private dirs), stopped after."""
    if not (shutil.which("containerd") and shutil.which("ctr")):
        yield None
        return
    state = Path(f"/run/pq-bench-ctrd-{os.getpid()}")
    address = str(state / "c.sock")
    log = open(tmp / "containerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "containerd",
            "--root",
            str(tmp / "ctrd-root"),
            "--state",
            str(state),
            "--address",
            address,
        ],
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(100):
            if quiet(["ctr", "-a", address, "version"], timeout=5):
                break
            time.sleep(0.1)
        else:
            yield None
            return
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", str(state)], capture_output=True, check=False)
        shutil.rmtree(state, ignore_errors=True)


def ctr_import(address: str | None, env: dict[str, str], tmp: Path) -> str | None:
    """The busybox image, saved by portique as an archive, imported into containerd."""
    if address is None:
        return None
    archive = tmp / "busybox-image.tar"
    if not quiet([PORTIQUE, "save", "-o", str(archive), "busybox:latest"], env=env):
        return None
    if not quiet(["ctr", "-a", address, "image", "import", str(archive)]):
        return None
    return "docker.io/library/busybox:latest"


def hyperfine(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            "hyperfine",
            "-N",
            "--style",
            "basic",
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--export-json",
            out.name,
        ]
        for name, cmd in commands.items():
            argv += ["-n", name, " ".join(cmd)]
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(Path(out.name).read_text())
    return {r["command"]: r["median"] for r in data["results"]}


def python_timing(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    out = {}
    for name, cmd in commands.items():
        for _ in range(warmup):
            subprocess.run(cmd, env=env, capture_output=True, check=True)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        times.sort()
        out[name] = times[len(times) // 2]
    return out


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, warmup: int
) -> dict[str, float]:
    """Medians; a command that fails once first is left out, with its error printed."""
    commands = dict(commands)
    for name, cmd in list(commands.items()):
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            p = subprocess.CompletedProcess(cmd, -1, "", str(e))
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            print(f"  ({name} left out: {' '.join(cmd)}: {tail[:300]})")
            del commands[name]
    if not commands:
        return {}
    if shutil.which("hyperfine"):
        return hyperfine(commands, env, runs, warmup)
    return python_timing(commands, env, runs, warmup)


def report(title: str, medians: dict[str, float], missing: dict[str, str]) -> None:
    print(f"\n{title}")
    mine = [n for n in ("cold", "warm", "before") if n in medians]
    for name, t in medians.items():
        ratios = []
        if name not in mine:
            ratios = [f"{m}/{name} = {medians[m] / t:.2f}" for m in mine if m != "before"]
        print(f"  {name:<10} {t * 1000:8.1f} ms   {'   '.join(ratios)}")
    for name, why in missing.items():
        print(f"  {name:<10} {'-':>8}    ({why})")
    if "before" in medians and "cold" in medians:
        print(f"  (portique cold now / before: {medians['cold'] / medians['before']:.3f})")


def import_time(env: dict[str, str]) -> float:
    code = (
        "import portique.cli.docker.main as m; from portique.cli.docker.commands import run, create"
    )
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total / 1e6


def monitor_pss(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--idle", type=int, default=20, help="idle containers for the PSS rows")
    ap.add_argument("--baseline", help="another installation's portique, measured beside")
    ap.add_argument("--no-docker", action="store_true", help="do not start a private dockerd")
    ap.add_argument("--portique", help="the portique to time (default: this venv's)")
    args = ap.parse_args()
    if args.portique:
        global PORTIQUE
        PORTIQUE = os.path.abspath(args.portique)
    if os.geteuid() != 0:
        print("bench/run.py: run me as root", file=sys.stderr)
        return 1
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="pq-bench-") as tmp:
        run_root = f"/run/pq-bench-{os.getpid()}"
        env = dict(os.environ, PORTIQUE_ROOT=f"{tmp}/root", PORTIQUE_RUNROOT=run_root)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's shell: .pyc files are used
        env.pop("PORTIQUE_WARM", None)  # each row says which path it takes
        tar = busybox_tar(Path(tmp))
        subprocess.run(
            [PORTIQUE, "import", str(tar), "busybox:latest"],
            env=env,
            check=True,
            capture_output=True,
        )
        warm = warm_start(env)
        try:
            with contextlib.ExitStack() as stack:
                ctr_address = stack.enter_context(private_containerd(Path(tmp)))
                ctr_image = ctr_import(ctr_address, env, Path(tmp))
                docker_env = None
                if not args.no_docker:
                    archive = Path(tmp) / "busybox-image.tar"
                    if not archive.exists():
                        quiet([PORTIQUE, "save", "-o", str(archive), "busybox:latest"], env=env)
                    docker_env = stack.enter_context(private_dockerd(Path(tmp) / "d", archive))
                peers, missing = peer_commands(tar, ctr_address, ctr_image, docker_env)
                bench_all(args, env, peers, missing, ctr_address, docker_env, warm)
        finally:
            if warm is True:
                quiet([PORTIQUE, "warm", "stop"], env=env)
            leftover = subprocess.run(
                [PORTIQUE, "ps", "-aq"], env=env, capture_output=True, text=True
            ).stdout.split()
            if leftover:
                subprocess.run(
                    [PORTIQUE, "rm", "-f", *leftover], env=env, capture_output=True, check=False
                )
            shutil.rmtree(run_root, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def warm_start(env: dict[str, str]) -> bool | str:
    """True when `portique warm start` started the fork-server; else why not."""
    try:
        p = subprocess.run(
            [PORTIQUE, "warm", "start"], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    if p.returncode != 0:
        return (p.stderr.strip().splitlines() or ["exit status " + str(p.returncode)])[0]
    return True


def _run_d(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(
        [PORTIQUE, "run", "-d", *argv], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _pss_of(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            out.append(monitor_pss(pid))
    return out


def _pgrep(pattern: str, exact: bool = False) -> list[int]:
    argv = ["pgrep", "-x" if exact else "-f", pattern]
    return [int(p) for p in subprocess.run(argv, capture_output=True, text=True).stdout.split()]


def _pss_line(name: str, pss: list[int], n: int) -> None:
    if not pss:
        print(f"  {name:<24} -  (none found)")
        return
    mean = sum(pss) / len(pss) / 1024
    print(
        f"  {name:<24} {mean:6.2f} MiB per process ({len(pss)} processes for {n} containers;"
        f" min {min(pss) / 1024:.2f}, max {max(pss) / 1024:.2f})"
    )


def bench_all(
    args: argparse.Namespace,
    env: dict[str, str],
    peers: dict[str, dict[str, list[str]]],
    missing: dict[str, str],
    ctr_address: str | None,
    docker_env: dict[str, str] | None,
    warm: bool | str,
) -> None:
    """Every row: portique cold (PORTIQUE_WARM=off) and warm beside the peers."""
    mine: dict[str, list[str]] = {"cold": ["env", "PORTIQUE_WARM=off", PORTIQUE]}
    if warm is True:
        mine["warm"] = ["env", PORTIQUE]
    else:
        missing = {**missing, "warm": f"not available ({warm})"}
    if args.baseline:
        mine["before"] = ["env", "PORTIQUE_WARM=off", args.baseline]
    denv = dict(env)
    if docker_env is not None:
        denv.update(
            DOCKER_HOST=docker_env["DOCKER_HOST"], DOCKER_CONFIG=docker_env["DOCKER_CONFIG"]
        )

    def row(title: str, portique_args: list[str], peer_key: str, why: dict[str, str]) -> None:
        cmds = {name: [*pre, *portique_args] for name, pre in mine.items()}
        for name, by_row in peers.items():
            if peer_key in by_row:
                cmds[name] = by_row[peer_key]
        gone = {k: v for k, v in missing.items() if k not in cmds}
        for name, by_row in peers.items():
            if peer_key not in by_row:
                gone[name] = why.get(name, "not measured")
        report(title, measure(cmds, denv, args.runs, args.warmup), gone)

    row(
        "run --rm --network none busybox true (median)",
        ["run", "--rm", "--network", "none", "busybox", "/bin/true"],
        "nonet",
        {},
    )
    row(
        "run --rm busybox true, default bridge (median)",
        ["run", "--rm", "busybox", "/bin/true"],
        "bridge",
        {"ctr": "ctr run sets up no network"},
    )
    row(
        "run -d busybox true (median; containers left exited, removed after)",
        ["run", "-d", "busybox", "/bin/true"],
        "detach",
        {"ctr": "ctr run -d needs a new container id per run"},
    )
    for name in ("docker", "podman"):
        if name in peers:
            cmd = ["docker", "ps", "-aq"] if name == "docker" else ["podman", "ps", "-aq"]
            ids = subprocess.run(cmd, env=denv, capture_output=True, text=True).stdout.split()
            if ids:
                quiet([cmd[0], "rm", "-f", *ids], env=denv)
    exited = subprocess.run(
        [PORTIQUE, "ps", "-aq", "--filter", "status=exited"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.split()
    if exited:
        quiet([PORTIQUE, "rm", "-f", *exited], env=env)

    # exec: one sleeping container per tool.
    cid = _run_d(env, "busybox", "sleep", "600")
    started = start_sleepers(peers, ctr_address, denv)
    try:
        row("exec CONTAINER true (median)", ["exec", cid, "/bin/true"], "exec", {})
    finally:
        stop_sleepers(started, ctr_address, denv)
    subprocess.run([PORTIQUE, "rm", "-f", cid], env=env, capture_output=True, check=False)
    idle_memory(args.idle, env, peers, ctr_address, warm)
    print(
        f"\nimport time of the `run` CLI path (python -X importtime, top-level sum): {import_time(env) * 1000:.1f} ms"
    )
    ver = measure({n: [*pre, "--version"] for n, pre in mine.items()}, env, args.runs, args.warmup)
    for name, t in ver.items():
        print(f"portique {name} --version (interpreter start-up + CLI import): {t * 1000:.1f} ms")


def start_sleepers(
    peers: dict[str, dict[str, list[str]]], ctr_address: str | None, denv: dict[str, str]
) -> list[str]:
    """A `sleep 600` container per peer, and its exec row in `peers`."""
    started = []
    if ctr_address and "ctr" in peers:
        image = peers["ctr"]["image"][0]
        ok = quiet(
            ["ctr", "-a", ctr_address, "run", "-d", image, "pq-bench-sleep", "sleep", "600"],
            timeout=60,
        )
        if ok:
            started.append("ctr")
            peers["ctr"]["exec"] = ["ctr", "-a", ctr_address, "task", "exec", "--exec-id",
                                    "e1", "pq-bench-sleep", "/bin/true"]  # fmt: skip
    for name in ("docker", "podman"):
        if name in peers:
            image = peers[name]["image"][0]
            argv = [*peers[name]["sleeper"], "--name", "pq-bench-sleep", image, "sleep", "600"]
            if quiet(argv, env=denv, timeout=60):
                started.append(name)
                peers[name]["exec"] = [name, "exec", "pq-bench-sleep", "/bin/true"]
    return started


def stop_sleepers(started: list[str], ctr_address: str | None, denv: dict[str, str]) -> None:
    for name in started:
        if name == "ctr" and ctr_address:
            ctr_rm(ctr_address, ["pq-bench-sleep"])
        else:
            quiet([name, "rm", "-f", "pq-bench-sleep"], env=denv)


def ctr_rm(address: str, ids: list[str]) -> None:
    for cid in ids:
        quiet(["ctr", "-a", address, "task", "kill", "-s", "KILL", cid])
    for cid in ids:
        for _ in range(50):  # bounded: the task is gone once its shim reaped it
            if quiet(["ctr", "-a", address, "task", "rm", "-f", cid]):
                break
            time.sleep(0.1)
        quiet(["ctr", "-a", address, "container", "rm", cid])


def idle_memory(
    n: int,
    env: dict[str, str],
    peers: dict[str, dict[str, list[str]]],
    ctr_address: str | None,
    warm: bool | str,
) -> None:
    """PSS of the per-container processes with `n` idle containers per tool."""
    print(f"\nper-container process memory, {n} idle `sleep 600` containers each (PSS)")
    for mode in ("cold", "warm"):
        if mode == "warm" and warm is not True:
            print(f"  {'portique warm monitor':<24} -  (warm: not available)")
            continue
        menv = dict(env, PORTIQUE_WARM="off") if mode == "cold" else env
        ids = [_run_d(menv, "--network", "none", "busybox", "sleep", "600") for _ in range(n)]
        try:
            time.sleep(1)
            # A re-executed monitor names `id=<cid>` on its command line; one
            # forked from the warm server is named `pqm-<cid[:11]>` (its comm).
            pids = [p for c in ids for p in {*_pgrep(f"id={c}"), *_pgrep(f"pqm-{c[:11]}", True)}]
            _pss_line(f"portique {mode} monitor", _pss_of(pids), n)
        finally:
            subprocess.run([PORTIQUE, "rm", "-f", *ids], env=env, capture_output=True, check=False)
    if "podman" in peers:
        before = set(_pgrep("conmon", exact=True))
        names = [f"pq-bench-idle-{i}" for i in range(n)]
        try:
            for name in names:
                argv = [*peers["podman"]["sleeper"], "--name", name, peers["podman"]["image"][0]]
                quiet([*argv, "sleep", "600"])
            time.sleep(1)
            conmons = [p for p in _pgrep("conmon", exact=True) if p not in before]
            _pss_line("podman's conmon", _pss_of(conmons), n)
        finally:
            quiet(["podman", "rm", "-f", "-t", "0", *names], timeout=300)
    if ctr_address and "ctr" in peers:
        shim = f"containerd-shim-runc-v2 .*{ctr_address}"
        before = set(_pgrep(shim))
        names = [f"pq-bench-idle-{i}" for i in range(n)]
        try:
            for name in names:
                quiet(["ctr", "-a", ctr_address, "run", "-d", peers["ctr"]["image"][0], name,
                       "sleep", "600"], timeout=60)  # fmt: skip
            time.sleep(1)
            shims = [p for p in _pgrep(shim) if p not in before]
            _pss_line("containerd-shim-runc-v2", _pss_of(shims), n)
        finally:
            ctr_rm(ctr_address, names)


if __name__ == "__main__":
    raise SystemExit(main())
