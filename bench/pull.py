#!/usr/bin/env python3
"""Benchmark `portique pull` of a large multi-layer image against skopeo (and podman).

The image (about 100 MB of gzip, 4 layers) is generated deterministically and
pushed to a local docker-registry started on a free 127.0.0.1 port:

    1. busybox (Debian's busybox-static and its applet links)
    2. 64 MiB of pseudo-random bytes (incompressible)
    3. 64 MiB of pseudo-random English-like text (compressible, ~3:1)
    4. 4000 small files (256 B - 4 KiB, mixed text and binary)

Each tool pulls into a fresh destination per run (removed untimed):

    portique pull            fresh PORTIQUE_ROOT: download, verify, unpack to snapshots
    skopeo copy -> oci:DIR   download and verify only, no unpack (the floor)
    skopeo copy -> containers-storage:   download + unpack (what `podman pull` does)
    podman pull              where installed

Medians of N runs and ratios to portique come from one invocation. Then the
unpack throughput of portique's layer unpacker (blobs already in the store)
is measured in MB/s of uncompressed tar. Needs root (unpack keeps ownership).

    .venv/bin/python bench/pull.py [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from support import oci_build as ob  # noqa: E402
from support.registry import start_registry  # noqa: E402

CACHE = Path(os.environ.get("PORTIQUE_BENCH_CACHE", "/var/tmp/portique-bench/pull-v1"))
MIB = 1 << 20
MTIME = 1_700_000_000
_SENTENCES = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could people "
    "my than first water been call who oil its now find long down day did get come made may "
    "part container image layer registry manifest digest overlay snapshot kernel namespace"
)
WORDS = _SENTENCES.split()


# ---- the image -------------------------------------------------------------------------


def gzip6(data: bytes) -> bytes:
    """gzip at level 6, as `docker push` and most registries' images use."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def tar_of(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs: set[str] = set()
        for name, data in files:
            parent = name.rpartition("/")[0]
            if parent and parent not in dirs:
                info = tarfile.TarInfo(parent)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = MTIME
                t.addfile(info)
                dirs.add(parent)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = MTIME
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def text_bytes(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        line = " ".join(rng.choices(WORDS, k=rng.randint(6, 16)))
        out += line.encode() + b".\n"
    return bytes(out[:size])


def build_layers() -> list[ob.Layer]:
    rng = random.Random(20261128)
    busybox = ob.busybox_tar().tar_bytes()
    noise = tar_of([("data/random.bin", rng.randbytes(64 * MIB))])
    # Text generated in 1 MiB pieces (each with its own words), so it compresses
    # like real text rather than like one repeated block.
    text = tar_of([("data/words.txt", b"".join(text_bytes(rng, MIB) for _ in range(64)))])
    small = []
    for i in range(4000):
        size = rng.randint(256, 4096)
        body = text_bytes(rng, size) if i % 2 else rng.randbytes(size)
        small.append((f"small/{i // 100:02d}/f{i:04d}", body))
    tars = [busybox, noise, text, tar_of(small)]
    media = "application/vnd.oci.image.layer.v1.tar+gzip"
    layers = []
    for tar in tars:
        blob = gzip6(tar)
        layers.append(ob.Layer(blob, ob.sha256(blob), ob.sha256(tar), media))
    return layers


def load_image() -> ob.BuiltImage:
    """The benchmark image, generated once and cached on disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    index = CACHE / "layers.txt"
    media = "application/vnd.oci.image.layer.v1.tar+gzip"
    if index.exists():
        layers = []
        for line in index.read_text().splitlines():
            digest, diff_id = line.split()
            layers.append(ob.Layer((CACHE / digest[7:]).read_bytes(), digest, diff_id, media))
    else:
        print("generating the benchmark image (once) ...", file=sys.stderr)
        layers = build_layers()
        for layer in layers:
            (CACHE / layer.digest[7:]).write_bytes(layer.blob)
        index.write_text("".join(f"{x.digest} {x.diff_id}\n" for x in layers))
    return ob.image_from_layers(layers, cmd=["/bin/sh"])


# ---- timing ----------------------------------------------------------------------------


def run_timed(
    name: str, cmd: Callable[[Path], list[str]], runs: int, env: Callable[[Path], dict[str, str]]
) -> list[float] | str:
    times = []
    for _ in range(runs):
        dest = Path(tempfile.mkdtemp(prefix="pull-bench-", dir="/var/tmp"))
        os.sync()  # start each run with no dirty pages from the previous one
        try:
            start = time.perf_counter()
            proc = subprocess.run(
                cmd(dest), env=env(dest), capture_output=True, text=True, timeout=900, check=False
            )
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                return f"failed: {proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else proc.returncode}"
            times.append(elapsed)
        finally:
            cleanup(dest)
    return times


def cleanup(dest: Path) -> None:
    # containers-storage leaves overlay mounts; unmount before removing.
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(str(dest))
    ]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False, capture_output=True)
    shutil.rmtree(dest, ignore_errors=True)


def storage_conf(dest: Path) -> Path:
    conf = dest / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{dest}/graph"\nrunroot = "{dest}/run"\n'
    )
    return conf


def unpack_throughput(img: ob.BuiltImage, runs: int) -> list[tuple[str, float, float]]:
    """(label, median seconds, MB/s of uncompressed tar) for portique's unpacker."""
    from portique.image.images import Images
    from portique.oci.image import Descriptor

    raw = sum(len(zlib.decompress(x.blob, 31)) for x in img.layers)
    results = []
    for label, parallel in (("unpack, layers in parallel", True), ("unpack, one at a time", False)):
        times = []
        for _ in range(runs):
            root = Path(tempfile.mkdtemp(prefix="unpack-bench-", dir="/var/tmp"))
            try:
                imgs = Images(root)
                descs = []
                for layer in img.layers:
                    imgs.store.write_bytes(layer.blob, layer.digest)
                    descs.append(Descriptor(layer.media_type, layer.digest, len(layer.blob)))
                os.sync()  # the blobs' writeback must not land inside the timing
                start = time.perf_counter()
                if parallel:
                    imgs.unpack_layers(descs)
                else:
                    for d in descs:
                        imgs.unpack_layer(d)
                times.append(time.perf_counter() - start)
                imgs.close()
            finally:
                shutil.rmtree(root, ignore_errors=True)
        elapsed = statistics.median(times)
        results.append((label, elapsed, raw / elapsed / 1e6))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--small", action="store_true", help="a one-layer busybox image against ctr/docker pull"
    )
    parser.add_argument(
        "--baseline",
        metavar="PORTIQUE",
        help="--small: another installation's portique (e.g. /work/base/.venv/bin/portique),"
        " timed in the same loop as the row 'before'",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/pull.py needs root", file=sys.stderr)
        return 1
    if args.small:
        return small_pull(args.runs, args.baseline)
    img = load_image()
    compressed = sum(len(x.blob) for x in img.layers)
    print(f"image: {len(img.layers)} layers, {compressed / 1e6:.1f} MB gzip")
    # Timings mean little on a busy host: say how busy it was.
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    base_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="pull-bench-reg-", dir="/var/tmp") as tmp:
        reg = start_registry(Path(tmp), mode="plain")
        try:
            ob.push_image(reg, "big", "latest", img)
            ref = f"{reg.host}/big:latest"
            portique = [sys.executable, "-m", "portique"]
            contenders: list[
                tuple[str, Callable[[Path], list[str]], Callable[[Path], dict[str, str]]]
            ] = [
                (
                    "portique pull",
                    lambda d: [*portique, "pull", "-q", ref],
                    lambda d: {**base_env, "PORTIQUE_ROOT": str(d)},
                ),
                (
                    "skopeo copy -> oci: (no unpack)",
                    lambda d: [
                        "skopeo",
                        "copy",
                        "-q",
                        "--src-tls-verify=false",
                        f"docker://{ref}",
                        f"oci:{d}/oci:latest",
                    ],
                    lambda d: base_env,
                ),
                (
                    "skopeo copy -> containers-storage:",
                    lambda d: [
                        "skopeo",
                        "copy",
                        "-q",
                        "--src-tls-verify=false",
                        f"docker://{ref}",
                        f"containers-storage:{ref}",
                    ],
                    lambda d: {**base_env, "CONTAINERS_STORAGE_CONF": str(storage_conf(d))},
                ),
            ]
            if shutil.which("podman"):
                contenders.append(
                    (
                        "podman pull",
                        lambda d: [
                            "podman",
                            "--root",
                            f"{d}/graph",
                            "--runroot",
                            f"{d}/run",
                            "pull",
                            "-q",
                            "--tls-verify=false",
                            ref,
                        ],
                        lambda d: base_env,
                    )
                )
            results = {}
            for name, cmd, env in contenders:
                results[name] = run_timed(name, cmd, args.runs, env)
        finally:
            reg.stop()
    base = results["portique pull"]
    base_median = statistics.median(base) if isinstance(base, list) else None
    print(f"\npull of {ref.split('/', 1)[1]} from a local registry, {args.runs} runs each")
    print(f"{'tool':<38} {'median':>9} {'min':>9} {'max':>9} {'vs portique':>12}")
    for name, times in results.items():
        if isinstance(times, str):
            print(f"{name:<38} {times}")
            continue
        med = statistics.median(times)
        ratio = f"{med / base_median:.2f}x" if base_median else "-"
        print(f"{name:<38} {med:>8.2f}s {min(times):>8.2f}s {max(times):>8.2f}s {ratio:>12}")
    if not shutil.which("podman"):
        print("podman pull: not installed here")
    print()
    for label, seconds, mbps in unpack_throughput(img, args.runs):
        print(f"{label:<38} {seconds:>8.2f}s {mbps:>8.0f} MB/s (uncompressed tar)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


# ---- the small pull: portique against ctr, docker and podman ---------------------------


Run = Callable[[], subprocess.CompletedProcess[bytes]]
Variant = tuple[Run, Callable[[], object]]  # (the timed command, its untimed reset)


def portique_variants(
    base: Path, ref: str, env: dict[str, str], baseline: str | None, stack: ExitStack
) -> dict[str, Variant]:
    """The portique rows of the small pull: cold and warm, and the baseline's.

    Each installation has its own run root (a warm server serves one
    installation); the engine roots are emptied before every run. The run
    roots stay: removing one would stop its warm server (started here by an
    untimed pull, stopped when `stack` closes). One more row, "(store kept)",
    pulls cold into a root that stays, the image removed (`rmi`) in between,
    as the peers' stores stay: what an empty root's first command adds (the
    database made) is not in it."""
    from run import PORTIQUE

    installs = {"portique pull": PORTIQUE}
    if baseline:
        installs["before"] = baseline
    roots = [base / f"pq-root-{i}" for i in range(2 * len(installs))]

    def empty_roots() -> None:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)

    stack.callback(empty_roots)
    variants: dict[str, Variant] = {}
    for i, (name, exe) in enumerate(installs.items()):
        for j, (suffix, mode) in enumerate((("", "off"), (" (warm)", "auto"))):
            venv = dict(
                env,
                PORTIQUE_ROOT=str(roots[2 * i + j]),
                PORTIQUE_RUNROOT=str(base / f"pq-run-{i}"),
                PORTIQUE_WARM=mode,
                PORTIQUE_WARM_IDLE="600",
            )
            pull = [exe, "pull", "-q", ref]
            if mode == "auto":
                subprocess.run(pull, env=venv, capture_output=True, check=False)
                stack.callback(subprocess.run, [exe, "warm", "stop"], env=venv, capture_output=True)
            variants[name + suffix] = (
                lambda pull=pull, venv=venv: subprocess.run(
                    pull, env=venv, capture_output=True, check=False
                ),
                empty_roots,
            )
    kept = dict(
        env,
        PORTIQUE_ROOT=str(base / "pq-root-kept"),
        PORTIQUE_RUNROOT=str(base / "pq-run-kept"),
        PORTIQUE_WARM="off",
    )
    stack.callback(shutil.rmtree, base / "pq-root-kept", ignore_errors=True)
    variants["portique pull (store kept)"] = (
        lambda: subprocess.run(
            [PORTIQUE, "pull", "-q", ref], env=kept, capture_output=True, check=False
        ),
        lambda: subprocess.run([PORTIQUE, "rmi", ref], env=kept, capture_output=True),
    )
    return variants


def timed_loop(
    run: Callable[[], subprocess.CompletedProcess[bytes]],
    reset: Callable[[], object],
    runs: int,
) -> list[float] | str:
    """`runs` timings of `run`, each after an untimed `reset` (bounded)."""
    times = []
    for _ in range(runs):
        reset()
        start = time.perf_counter()
        proc = run()
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()
            return f"failed: {tail[-1][:200] if tail else proc.returncode}"
        times.append(elapsed)
    return times


def interleaved(variants: dict[str, Variant], runs: int) -> dict[str, list[float] | str]:
    """`runs` timings of each variant, taking turns (so that a change of load
    falls on all of them), each after its untimed reset."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    failed: dict[str, str] = {}
    for _ in range(runs):
        for name, (run, reset) in variants.items():
            if name in failed:
                continue
            result = timed_loop(run, reset, 1)
            if isinstance(result, str):
                failed[name] = result
            else:
                times[name] += result
    return {name: failed.get(name, times[name]) for name in variants}


def small_pull(runs: int, baseline: str | None = None) -> int:
    """`portique pull` of a one-layer busybox image (~1 MB) beside `ctr pull` (a
    private containerd), `docker pull` (a private dockerd) and `podman pull`,
    each into an empty store per run (the image removed, untimed, in between).

    portique is timed cold (PORTIQUE_WARM=off) and warm (through its run root's
    fork-server), and so is `baseline` when given; every daemon is started
    first, then all rows take turns run by run."""
    from peers import private_dockerd
    from run import private_containerd

    tar = ob.busybox_tar().tar_bytes()
    blob = gzip6(tar)
    media = "application/vnd.oci.image.layer.v1.tar+gzip"
    img = ob.image_from_layers(
        [ob.Layer(blob, ob.sha256(blob), ob.sha256(tar), media)], cmd=["/bin/sh"]
    )
    print(f"small image: 1 layer, {len(blob) / 1e6:.2f} MB gzip; {runs} runs per tool")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, list[float] | str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="pull-small-", dir="/var/tmp") as tmp,
        ExitStack() as stack,
    ):
        base = Path(tmp)
        reg = start_registry(base / "reg", mode="plain")
        stack.callback(reg.stop)
        ob.push_image(reg, "small", "latest", img)
        ref = f"{reg.host}/small:latest"
        variants = portique_variants(base, ref, env, baseline, stack)
        # Every peer is up before the first run, so that all rows take turns.
        address = stack.enter_context(private_containerd(base))
        if address is None:
            results["ctr pull"] = "containerd would not start"
        else:
            ctr = ["ctr", "-a", address, "images"]
            variants["ctr pull"] = (
                lambda: subprocess.run(
                    [*ctr, "pull", "--plain-http", ref], capture_output=True, check=False
                ),
                lambda: subprocess.run([*ctr, "rm", "--sync", ref], capture_output=True),
            )
        denv = stack.enter_context(private_dockerd(base / "d"))
        if denv is None:
            results["docker pull"] = "no private dockerd"
        else:
            variants["docker pull"] = (
                lambda: subprocess.run(
                    ["docker", "pull", "-q", ref], env=denv, capture_output=True, check=False
                ),
                lambda: subprocess.run(["docker", "rmi", "-f", ref], env=denv, capture_output=True),
            )
        if shutil.which("podman"):
            pm = ["podman", "--root", f"{base}/pm-graph", "--runroot", f"{base}/pm-run"]
            stack.callback(cleanup, base / "pm-graph")
            variants["podman pull"] = (
                lambda: subprocess.run(
                    [*pm, "pull", "-q", "--tls-verify=false", ref], capture_output=True, check=False
                ),
                lambda: subprocess.run([*pm, "rmi", "-af"], capture_output=True),
            )
        results = {**interleaved(variants, runs), **results}

    def median_of(name: str) -> float | None:
        t = results.get(name)
        return statistics.median(t) if isinstance(t, list) and t else None

    cold, warm = median_of("portique pull"), median_of("portique pull (warm)")
    print(
        f"{'tool':<22} {'median':>9} {'min':>9} {'max':>9}"
        f" {'portique / tool':>16} {'warm / tool':>12}"
    )
    for name, times in results.items():
        if isinstance(times, str):
            print(f"{name:<22} {times}")
            continue
        med = statistics.median(times)
        ratio = f"{cold / med:.2f}" if cold else "-"
        wratio = f"{warm / med:.2f}" if warm else "-"
        print(
            f"{name:<22} {med * 1000:>7.1f}ms {min(times) * 1000:>7.1f}ms"
            f" {max(times) * 1000:>7.1f}ms {ratio:>16} {wratio:>12}"
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
