"""Kubernetes' path: containerd's CRI plugin runs pods with portique-runtime
(issue 12, item 6; docs/kubernetes.md is the user's side of it).

A private containerd (Debian's 1.6: its own root, state and socket) with the
CRI plugin enabled and two runtime handlers of the stock runc shim v2
(`io.containerd.runc.v2`): `portique`, the handler of
docs/kubernetes/containerd-config.toml as written there (BinaryName = this
checkout's portique-runtime), and `runc`, the same with runc. The test drives it over the CRI gRPC API (the v1 stubs of PyPI's
container-runtime-interface-api) as the kubelet does: RunPodSandbox with a
handler, CreateContainer and StartContainer of two containers sharing the
pod's network, UTS and IPC namespaces, ExecSync, the container log file,
ContainerStats, StopContainer, RemoveContainer, StopPodSandbox and
RemovePodSandbox. The same test runs on both handlers.

This host's quirks, set as a cluster's node would set them:
- no CAP_SYS_RESOURCE: containerd gives a sandbox oom_score_adj -998, which
  no runtime can set here; `restrict_oom_score_adj = true` makes it clamp;
- the pause image is busybox's sleep (`localhost/portique-pause:1`), loaded
  with `ctr -n k8s.io images import`, named by `sandbox_image`;
- the pod network is Debian's CNI bridge plugin on a bridge of the test's
  own, with no address on the host side, no masquerade and no gateway: the
  pod's namespace is reachable from nowhere, and the two containers talk
  over its loopback; network namespaces live under containerd's state dir.
- the kubelet asks for hugepage limits (0 for every size); containerd's
  default `tolerate_missing_hugetlb_controller` drops them on a v1 host
  without a hugetlb hierarchy (this one's hugetlb is on the cgroup2 mount, or
  nowhere), so no runtime sees them here; runc and portique-runtime both
  refuse them when asked without the controller, and both apply them when
  it is mounted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.compat_images import BUSYBOX, PAUSE, RUNTIME, CompatImages
from support.daemons import (
    Daemon,
    cgroup_dirs,
    delete_link,
    kill_strays,
    link_exists,
    memory_limit_file,
    mounts_under,
    remove_cgroup_tree,
    unmount_under,
    unmounted_v1_controllers,
)

pytestmark = [pytest.mark.compat, pytest.mark.root]

HANDLERS = ("portique", "runc")
PORT = 18080


@dataclass
class CRI:
    base: Path
    daemon: Daemon
    cgroup_parent: str
    runtime_roots: dict[str, Path]  # handler -> the runtime's --root for k8s.io
    bridge: str
    runtime: Any  # RuntimeServiceStub
    images: Any  # ImageServiceStub


DOCS_CONFIG = Path(__file__).parents[2] / "docs/kubernetes/containerd-config.toml"


def _handler(name: str, binary: str, base: Path) -> str:
    """The `portique` handler's tables of docs/kubernetes/containerd-config.toml
    under `name`, with `binary` and a private state root."""
    cri = tomllib.loads(DOCS_CONFIG.read_text())["plugins"]["io.containerd.grpc.v1.cri"]
    documented = cri["containerd"]["runtimes"]["portique"]
    options = {**documented["options"], "BinaryName": binary, "Root": f"{base}/runtime-{name}"}
    section = f'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}'
    text = f"    [{section}]\n"
    text += "".join(
        f"      {k} = {json.dumps(v)}\n" for k, v in documented.items() if k != "options"
    )
    text += f"      [{section}.options]\n"
    return text + "".join(f"        {k} = {json.dumps(v)}\n" for k, v in options.items())


def _config(base: Path, bridge: str) -> str:
    runtimes = _handler("portique", RUNTIME, base) + _handler(
        "runc", shutil.which("runc") or "runc", base
    )
    return (
        "version = 2\n"
        f'root = "{base}/root"\n'
        f'state = "{base}/state"\n'
        "[grpc]\n"
        f'  address = "{base}/containerd.sock"\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n'
        f'  sandbox_image = "{PAUSE}"\n'
        "  restrict_oom_score_adj = true\n"
        "  netns_mounts_under_state_dir = true\n"
        '  stream_server_address = "127.0.0.1"\n'
        '  [plugins."io.containerd.grpc.v1.cri".cni]\n'
        '    bin_dir = "/usr/lib/cni"\n'
        f'    conf_dir = "{base}/cni"\n'
        '  [plugins."io.containerd.grpc.v1.cri".containerd]\n'
        '    default_runtime_name = "runc"\n' + runtimes
    )


def _cni(base: Path, bridge: str) -> None:
    (base / "cni").mkdir()
    subnet = f"10.244.{os.getpid() % 200 + 20}.0/24"
    (base / "cni/10-portique-compat.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "1.0.0",
                "name": "portique-compat",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": bridge,
                        "isGateway": False,
                        "ipMasq": False,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": subnet}]],
                            "dataDir": str(base / "ipam"),
                        },
                    }
                ],
            }
        )
    )


@pytest.fixture(scope="module")
def cri(tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages) -> Iterator[CRI]:
    assert shutil.which("containerd"), "containerd is missing: scripts/setup.sh installs it"
    assert Path("/usr/lib/cni/bridge").exists(), (
        "the CNI bridge plugin is missing: scripts/setup.sh installs containernetworking-plugins"
    )
    import grpc
    from cri_api.v1 import api_pb2_grpc

    base = tmp_path_factory.mktemp("cri")
    bridge = f"pqcri{os.getpid() % 100000}"
    parent = f"portique/compat-cri-{os.getpid()}"
    _cni(base, bridge)
    (base / "config.toml").write_text(_config(base, bridge))
    sock = base / "containerd.sock"
    daemon = Daemon(
        "containerd", ["containerd", "--config", str(base / "config.toml")], base / "containerd.log"
    )
    channel = None
    try:
        daemon.wait_until(sock.exists, "listening on its socket")
        for archive in (compat_images.pause, compat_images.busybox):
            subprocess.run(
                ["ctr", "-a", str(sock), "-n", "k8s.io", "images", "import", str(archive)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        channel = grpc.insecure_channel(f"unix://{sock}")
        yield CRI(
            base=base,
            daemon=daemon,
            cgroup_parent=parent,
            runtime_roots={h: base / f"runtime-{h}" / "k8s.io" for h in HANDLERS},
            bridge=bridge,
            runtime=api_pb2_grpc.RuntimeServiceStub(channel),
            images=api_pb2_grpc.ImageServiceStub(channel),
        )
    finally:
        problems = []
        if channel is not None:
            _remove_all_pods(channel)
            channel.close()
        daemon.stop()
        strays = kill_strays(base, (base / "state/io.containerd.runtime.v2.task/k8s.io",))
        if strays:
            problems.append(f"processes left running: {strays}")
        left = unmount_under(base)
        if left:
            problems.append(f"mounts left under {base}: {left}")
        left = remove_cgroup_tree(parent)
        if left:
            problems.append(f"cgroups left: {left}")
        if link_exists(bridge):
            delete_link(bridge)
        assert not problems, "; ".join(problems)


def _remove_all_pods(channel: Any) -> None:
    """What a failed test left: every pod stopped and removed through the CRI,
    so that containerd tears down its network namespace and veth."""
    from cri_api.v1 import api_pb2 as pb
    from cri_api.v1 import api_pb2_grpc

    rt = api_pb2_grpc.RuntimeServiceStub(channel)
    try:
        pods = rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
        for pod in pods:
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
    except Exception as exc:  # the daemon may be the thing that failed
        print(f"cri teardown: {exc}")


def _runtime_status(cri: CRI, handler: str, cid: str) -> str | None:
    """The handler's runtime's own view of a container (its `state` verb)."""
    binary = RUNTIME if handler == "portique" else "runc"
    proc = subprocess.run(
        [binary, "--root", str(cri.runtime_roots[handler]), "state", cid],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return str(json.loads(proc.stdout)["status"]) if proc.returncode == 0 else None


def _wait(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.05)


@pytest.mark.parametrize("handler", HANDLERS)
def test_pod_of_two_containers(cri: CRI, handler: str) -> None:
    import grpc
    from cri_api.v1 import api_pb2 as pb

    rt = cri.runtime
    uid = uuid.uuid4().hex
    logs = cri.base / "pods" / uid
    ns = pb.NamespaceOption(
        network=pb.NamespaceMode.POD, pid=pb.NamespaceMode.CONTAINER, ipc=pb.NamespaceMode.POD
    )
    runtime_default = pb.SecurityProfile(profile_type=pb.SecurityProfile.ProfileType.RuntimeDefault)
    pod_parent = f"/{cri.cgroup_parent}/pod{uid}"
    sandbox_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=f"web-{handler}", uid=uid, namespace="default"),
        hostname=f"web-{handler}",
        log_directory=str(logs),
        labels={"app": "web"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=pod_parent,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=ns, seccomp=runtime_default
            ),
        ),
    )
    # What the kubelet checks before creating containers (it would pull otherwise).
    assert cri.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX))).image.id

    pod = rt.RunPodSandbox(
        pb.RunPodSandboxRequest(config=sandbox_config, runtime_handler=handler)
    ).pod_sandbox_id
    try:
        status = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
        assert status.state == pb.PodSandboxState.SANDBOX_READY
        assert status.runtime_handler == handler
        assert status.network.ip.startswith("10.244.")
        assert _runtime_status(cri, handler, pod) == "running"

        def create(name: str, script: str) -> str:
            config = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name=name),
                image=pb.ImageSpec(image=BUSYBOX),
                command=["sh", "-c", script],
                log_path=f"{name}/0.log",
                linux=pb.LinuxContainerConfig(
                    # What the kubelet sends for a burstable container with a
                    # 64Mi memory limit and half a CPU.
                    resources=pb.LinuxContainerResources(
                        cpu_period=100000,
                        cpu_quota=50000,
                        cpu_shares=512,
                        memory_limit_in_bytes=64 << 20,
                        oom_score_adj=999,
                        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=0)],
                    ),
                    security_context=pb.LinuxContainerSecurityContext(
                        namespace_options=ns,
                        seccomp=runtime_default,
                        masked_paths=["/proc/kcore", "/proc/keys", "/proc/timer_list"],
                        readonly_paths=["/proc/sys", "/proc/sysrq-trigger"],
                    ),
                ),
            )
            cid: str = rt.CreateContainer(
                pb.CreateContainerRequest(
                    pod_sandbox_id=pod, config=config, sandbox_config=sandbox_config
                )
            ).container_id
            rt.StartContainer(pb.StartContainerRequest(container_id=cid))
            return cid

        # A server on the pod's loopback; both exit at once on SIGTERM.
        server = create(
            "server",
            "trap 'exit 0' TERM; echo server up;"
            f" while :; do echo hello from the server | nc -l -p {PORT} 127.0.0.1; done & wait",
        )
        client = create("client", "trap 'exit 7' TERM; echo client up; sleep 1000 & wait")
        for cid in (server, client):
            st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
            assert st.state == pb.ContainerState.CONTAINER_RUNNING
            assert _runtime_status(cri, handler, cid) == "running"
        limit = memory_limit_file(f"{pod_parent}/{server}")
        assert limit.read_text().strip() == str(64 << 20)

        server_log = logs / "server/0.log"
        _wait(
            "the server's log line",
            lambda: server_log.exists() and "server up" in server_log.read_text(),
        )
        # CRI's log format: time, stream, P(artial)/F(ull), text.
        first = server_log.read_text().splitlines()[0].split(" ", 3)
        assert first[1:] == ["stdout", "F", "server up"]

        # The client reaches the server over the pod's shared loopback, in the
        # pod's UTS namespace; ExecSync returns output and exit status.
        def ask() -> bool:
            r = rt.ExecSync(
                pb.ExecSyncRequest(
                    container_id=client,
                    cmd=["sh", "-c", f"nc 127.0.0.1 {PORT} </dev/null"],
                    timeout=10,
                )
            )
            return bool(r.exit_code == 0 and r.stdout == b"hello from the server\n")

        _wait("an answer from the server container", ask)
        r = rt.ExecSync(
            pb.ExecSyncRequest(
                container_id=client,
                cmd=["sh", "-c", "hostname; cat /proc/1/oom_score_adj; echo oops >&2; exit 3"],
                timeout=10,
            )
        )
        assert (r.exit_code, r.stdout, r.stderr) == (3, f"web-{handler}\n999\n".encode(), b"oops\n")

        try:
            stats = rt.ContainerStats(pb.ContainerStatsRequest(container_id=server)).stats
        except grpc.RpcError as exc:
            hidden = unmounted_v1_controllers()
            raise AssertionError(
                f"ContainerStats: {exc.details()}"
                + (
                    f"; the host has v1 hierarchies mounted nowhere ({', '.join(hidden)}: "
                    "left by cgfix.sh off until the kernel frees them), so containerd's "
                    "shim cannot load any container's cgroups, whatever the runtime"
                    if hidden
                    else ""
                )
            ) from exc
        assert stats.attributes.id == server
        assert stats.memory.working_set_bytes.value > 0
        assert stats.cpu.usage_core_nano_seconds.value > 0

        for cid, code in ((client, 7), (server, 0)):
            rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=30))
            st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
            assert st.state == pb.ContainerState.CONTAINER_EXITED
            assert st.exit_code == code
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
            assert _runtime_status(cri, handler, cid) is None
            assert not cgroup_dirs(f"{pod_parent}/{cid}")
        assert not rt.ListContainers(pb.ListContainersRequest()).containers
    finally:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert _runtime_status(cri, handler, pod) is None
    assert not [m for m in mounts_under(cri.base) if pod in m]
