"""The callers of bench/runtime_start.py: a private dockerd and a private
containerd with its CRI plugin, each running the same container with
portique-runtime, runc and crun (see bench/README.md).

Both daemons are the test suites' setup (tests/compat) made standalone: their
own roots, sockets and cgroup parent (`portique/bench-*`), no bridge or
iptables for dockerd, a CNI bridge with no host address for the pods, all of
it removed at the end. `cgfix()` wraps ../shared/peers/cgfix.sh, the one
allowed change to the host's cgroup mounts (crun 1.8 refuses this host's v1
"hybrid" layout while hugetlb sits on the cgroup2 mount), and always turns
it off again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BUSYBOX_IMAGE = "docker.io/library/busybox:latest"
PAUSE_IMAGE = "localhost/portique-pause:1"


def make_images(base: Path) -> tuple[Path, Path]:
    """docker-archives of a busybox image and a pause image (busybox's sleep),
    made with `portique import` and `portique save` in a private root."""
    rootfs = base / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("true", "sh", "sleep"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    tar = base / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    env = dict(
        os.environ, PORTIQUE_ROOT=str(base / "pq-root"), PORTIQUE_RUNROOT=str(base / "pq-run")
    )
    out = []
    for name, cmd in (
        (BUSYBOX_IMAGE, '["/bin/sh"]'),
        (PAUSE_IMAGE, '["/bin/sleep", "2147483647"]'),
    ):
        pq = [sys.executable, "-m", "portique"]
        subprocess.run(
            [*pq, "import", "--change", f"CMD {cmd}", str(tar), name],
            env=env,
            check=True,
            capture_output=True,
        )
        archive = base / (name.rsplit("/", 1)[1].replace(":", "-") + ".tar")
        subprocess.run(
            [*pq, "save", "-o", str(archive), name], env=env, check=True, capture_output=True
        )
        out.append(archive)
    subprocess.run(["rm", "-rf", str(base / "pq-run")], check=False)
    return out[0], out[1]


class Daemon:
    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until(self, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.proc.args[0]} did not come up:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _mounts_under(base: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(base) or p.startswith(f"{base}/")]


def clean_up(base: Path, cgroup_parent: str) -> None:
    """Unmount what stays under `base`; remove the cgroup parent everywhere."""
    for point in reversed(_mounts_under(base)):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / cgroup_parent
        if top.is_dir():
            for d in sorted((d for d, _, _ in os.walk(top)), key=len, reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(d)


@contextlib.contextmanager
def dockerd(base: Path, busybox: Path, runtimes: dict[str, str]) -> Iterator[dict[str, str]]:
    """A private dockerd with `runtimes` (name -> path) added; yields the env
    for the docker CLI."""
    base.mkdir(parents=True)
    parent = f"portique/bench-dockerd-{os.getpid()}"
    (base / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
    argv = ["dockerd", "--config-file", str(base / "daemon.json"), "--data-root", str(base / "data"),
            "--exec-root", str(base / "exec"), "--host", f"unix://{base / 'docker.sock'}",
            "--pidfile", str(base / "docker.pid"), "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--cgroup-parent", f"/{parent}", "--bridge", "none", "--iptables=false",
            "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"]  # fmt: skip
    for name, path in runtimes.items():
        argv += ["--add-runtime", f"{name}={path}"]
    env = dict(
        os.environ, DOCKER_HOST=f"unix://{base / 'docker.sock'}", DOCKER_CONFIG=str(base / "cli")
    )
    daemon = Daemon(argv, base / "dockerd.log")

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        daemon.wait_until(
            lambda: (base / "docker.sock").exists() and docker("version").returncode == 0
        )
        loaded = docker("load", "-i", str(busybox))
        if loaded.returncode != 0:
            raise RuntimeError(f"docker load: {loaded.stderr}")
        yield env
    finally:
        if daemon.proc.poll() is None:
            ids = docker("ps", "-aq").stdout.split()
            if ids:
                docker("rm", "-f", *ids)
        daemon.stop()
        clean_up(base, parent)


class CRI:
    """A private containerd with the CRI plugin and one runc-shim handler per
    runtime; `pod_start(handler)` times a pod and its container starting."""

    def __init__(self, base: Path, runtimes: dict[str, str], images: tuple[Path, Path]) -> None:
        import grpc
        from cri_api.v1 import api_pb2_grpc

        base.mkdir(parents=True)
        self.base = base
        self.parent = f"portique/bench-cri-{os.getpid()}"
        self.bridge = f"pqbench{os.getpid() % 100000}"
        (base / "cni").mkdir()
        (base / "cni/10-bench.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "portique-bench",
            "plugins": [{"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                         "ipam": {"type": "host-local", "dataDir": str(base / "ipam"),
                                  "ranges": [[{"subnet": f"10.245.{os.getpid() % 200 + 20}.0/24"}]]}}],
        }))  # fmt: skip
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = (
            f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
            f'[grpc]\n  address = "{base}/containerd.sock"\n'
            f'[{cri}]\n  sandbox_image = "{PAUSE_IMAGE}"\n  restrict_oom_score_adj = true\n'
            "  netns_mounts_under_state_dir = true\n"
            f'[{cri}.cni]\n  bin_dir = "/usr/lib/cni"\n  conf_dir = "{base}/cni"\n'
        )
        for name, path in runtimes.items():
            config += (
                f'[{cri}.containerd.runtimes.{name}]\n  runtime_type = "io.containerd.runc.v2"\n'
                f'[{cri}.containerd.runtimes.{name}.options]\n  BinaryName = "{path}"\n'
                f'  Root = "{base}/runtime-{name}"\n'
            )
        (base / "config.toml").write_text(config)
        sock = base / "containerd.sock"
        self.daemon = Daemon(
            ["containerd", "--config", str(base / "config.toml")], base / "containerd.log"
        )
        self.channel: Any = None
        try:
            self.daemon.wait_until(sock.exists)
            for archive in images:
                subprocess.run(["ctr", "-a", str(sock), "-n", "k8s.io", "images", "import", str(archive)],
                               check=True, capture_output=True, timeout=120)  # fmt: skip
            self.channel = grpc.insecure_channel(f"unix://{sock}")
            self.rt = api_pb2_grpc.RuntimeServiceStub(self.channel)
        except BaseException:
            self.close()
            raise

    def pod_start(self, handler: str) -> float:
        """Seconds from RunPodSandbox to StartContainer's return (the pod's
        sandbox and one container running); the pod is then removed, untimed."""
        from cri_api.v1 import api_pb2 as pb

        uid = uuid.uuid4().hex
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="bench", uid=uid, namespace="default"),
            hostname="bench",
            log_directory=str(self.base / "pods" / uid),
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"/{self.parent}/pod{uid}"),
        )
        container = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="main"),
            image=pb.ImageSpec(image=BUSYBOX_IMAGE),
            command=["sleep", "3600"],
            log_path="main.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(
                    cpu_period=100000, cpu_shares=2, oom_score_adj=1000
                )
            ),
        )
        start = time.perf_counter()
        pod = self.rt.RunPodSandbox(
            pb.RunPodSandboxRequest(config=config, runtime_handler=handler)
        ).pod_sandbox_id
        try:
            cid = self.rt.CreateContainer(
                pb.CreateContainerRequest(
                    pod_sandbox_id=pod, config=container, sandbox_config=config
                )
            ).container_id
            self.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
            elapsed = time.perf_counter() - start
        finally:
            self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
            self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        return elapsed

    def close(self) -> None:
        if self.channel is not None:
            from cri_api.v1 import api_pb2 as pb

            with contextlib.suppress(Exception):
                for pod in self.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items:
                    self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id))
                    self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
            self.channel.close()
        self.daemon.stop()
        clean_up(self.base, self.parent)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)


def time_pods(cri: CRI, handlers: list[str], runs: int, warmup: int) -> dict[str, list[float]]:
    """`runs` pod starts per handler, the handlers taking turns (so a burst of
    load on the shared CPUs spreads over all of them)."""
    for _ in range(warmup):
        for h in handlers:
            cri.pod_start(h)
    times: dict[str, list[float]] = {h: [] for h in handlers}
    for _ in range(runs):
        for h in handlers:
            times[h].append(cri.pod_start(h))
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "mean": statistics.fmean(times), "min": min(times)}


@contextlib.contextmanager
def cgfix(script: str) -> Iterator[None]:
    """Bind hugetlb to a v1 hierarchy for the block (crun 1.8 accepts the
    layout then), and always undo it, retrying while cgroups drain."""
    subprocess.run(["bash", script, "on"], check=True, capture_output=True)
    try:
        yield
    finally:
        for _ in range(50):
            if subprocess.run(["bash", script, "off"], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            print(f"warning: `{script} off` kept failing: /sys/fs/cgroup/hugetlb is still mounted")
