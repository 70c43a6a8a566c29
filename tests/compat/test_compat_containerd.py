"""containerd drives portique-runtime through its stock runc shim.

containerd-shim-runc-v2 (what Docker and Kubernetes run under) calls the
binary given as `--runc-binary` with runc's command line: create with a
console socket or fifos, start, state, exec --process, pause/resume, kill,
delete, and reads its --log in JSON. A busybox image made by `portique
import` and exported with `portique save` (tests/support/compat_images.py)
is imported into a private containerd (own root, state and socket), and
every container's cgroup is placed under the `portique` parent with
`--cgroup`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.compat_images import BUSYBOX as IMAGE
from support.compat_images import RUNTIME, CompatImages

pytestmark = [pytest.mark.compat, pytest.mark.root]

NS = "portique-compat"

Ctr = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages) -> Iterator[Ctr]:
    assert shutil.which("containerd"), "containerd is missing: scripts/setup.sh installs it"
    base = tmp_path_factory.mktemp("containerd")
    sock = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base}/root"\n'
        f'state = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
    )
    log = open(base / "containerd.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen(
        ["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert daemon.poll() is None, (base / "containerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd did not start in 30 s"
            time.sleep(0.05)

        def run(
            *args: str, check: bool = True, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
            proc = subprocess.run(
                ["ctr", "-a", str(sock), "-n", NS, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if check and proc.returncode != 0:
                raise AssertionError(f"ctr {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
            return proc

        run("images", "import", str(compat_images.busybox))
        yield run
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        subprocess.run(["umount", "-R", str(base / "root")], capture_output=True)
        subprocess.run(["umount", "-R", str(base / "state")], capture_output=True)


def _cid() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def _run(
    ctr: Ctr, cid: str, *cmd: str, extra: tuple[str, ...] = (), check: bool = True
) -> subprocess.CompletedProcess[str]:
    return ctr(
        "run", "--rm", "--runc-binary", RUNTIME, "--cgroup", f"/portique/{cid}", *extra, IMAGE, cid, *cmd,
        check=check,
    )  # fmt: skip


def test_foreground_output_and_exit_code(ctr: Ctr) -> None:
    out = _run(ctr, _cid(), "/bin/sh", "-c", "echo hello from containerd; echo pid $$").stdout
    assert out == "hello from containerd\npid 1\n"
    failed = _run(ctr, _cid(), "/bin/sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3


def test_detached_exec_pause_resume_kill(ctr: Ctr) -> None:
    cid = _cid()
    ctr("run", "-d", "--runc-binary", RUNTIME, "--cgroup", f"/portique/{cid}",
        "--memory-limit", "33554432", IMAGE, cid, "sleep", "300")  # fmt: skip
    try:
        tasks = ctr("task", "ls").stdout
        assert cid in tasks
        assert "RUNNING" in tasks
        exec_out = ctr(
            "task", "exec", "--exec-id", "e1", cid, "/bin/sh", "-c", "echo exec ok; ps"
        ).stdout
        assert "exec ok" in exec_out
        assert "sleep 300" in exec_out  # the exec shares the container's pid namespace
        limit = Path("/sys/fs/cgroup/memory/portique", cid, "memory.limit_in_bytes")
        if not limit.exists():
            limit = Path("/sys/fs/cgroup/portique", cid, "memory.max")
        assert limit.read_text().strip() == "33554432"
        ctr("task", "pause", cid)
        assert "PAUSED" in ctr("task", "ls").stdout
        ctr("task", "resume", cid)
        assert "RUNNING" in ctr("task", "ls").stdout
        ctr("task", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 30
        while "STOPPED" not in ctr("task", "ls").stdout:
            assert time.monotonic() < deadline, "task did not stop after SIGKILL"
            time.sleep(0.1)
    finally:
        ctr("task", "delete", "-f", cid, check=False)
        ctr("container", "delete", cid, check=False)
    assert cid not in ctr("task", "ls").stdout
    assert not Path("/sys/fs/cgroup/memory/portique", cid).exists()
    assert not Path("/sys/fs/cgroup/portique", cid).exists()
