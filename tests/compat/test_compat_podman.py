"""podman runs its containers with portique-runtime (issue 12, item 6).

Debian's podman (4.3) with `--runtime PATH`: conmon calls the runtime with
its own flags (create with --pid-file, --console-socket for -t; exec with
--process and --detach; kill, pause, resume, delete --force; update with
--resources FILE). Everything podman keeps is private to the test: its
containers.conf (CONTAINERS_CONF: cgroupfs, events in a file, tmp_dir,
volume path, network config dir, and rlimits this host can grant: its hard
nofile limit is 20000 and CAP_SYS_RESOURCE is not in the bounding set, so
podman's default nofile=1048576 fails under any runtime), storage.conf
(graph root and run root under the test's directory) and registries.conf.
Containers run with `--network none` under a `portique/compat-podman-*`
cgroup parent. podman calls the runtime without --root, so its state is in
portique-runtime's default root, where the tests look for it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.compat_images import BUSYBOX, RUNTIME, CompatImages
from support.daemons import (
    cgroup_dirs,
    kill_strays,
    memory_limit_file,
    mounts_under,
    remove_cgroup_tree,
    unmount_under,
)
from support.terminal import Terminal

pytestmark = [pytest.mark.compat, pytest.mark.root]

WAITER = "echo started; trap 'echo got term; exit 7' TERM; sleep 1000 & wait"


class Podman:
    def __init__(self, base: Path, cgroup_parent: str) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.env = dict(
            os.environ,
            CONTAINERS_CONF=str(base / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(base / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(base / "registries.conf"),
        )
        self.argv = ["podman", "--runtime", RUNTIME]
        self.run_args = ("run", "--network", "none", "--cgroup-parent", f"/{cgroup_parent}")

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.argv, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
        return proc

    def ok(self, *args: str) -> str:
        return self(*args).stdout

    def inspect(self, cid: str, template: str) -> str:
        return self.ok("inspect", "-f", template, cid).strip()

    def memory_limit(self, cid: str) -> Path:
        return memory_limit_file(f"{self.cgroup_parent}/libpod-{cid}")


def runtime_state(cid: str) -> dict[str, object] | None:
    """portique-runtime's view of a container in its default root."""
    proc = subprocess.run([RUNTIME, "state", cid], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return None
    state: dict[str, object] = json.loads(proc.stdout)
    return state


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.05)


def _write_config(base: Path) -> None:
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    # podman lowers its own hard nproc limit to 32768 (its default for containers).
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    (base / "containers.conf").write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{base}/tmp"\n'
        f'volume_path = "{base}/volumes"\n'
        "[network]\n"
        f'network_config_dir = "{base}/networks"\n'
    )
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n'
    )
    (base / "registries.conf").write_text("unqualified-search-registries = []\n")


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages
) -> Iterator[Podman]:
    assert shutil.which("podman"), "podman is missing: scripts/setup.sh installs it"
    base = tmp_path_factory.mktemp("podman")
    _write_config(base)
    parent = f"portique/compat-podman-{os.getpid()}"
    p = Podman(base, parent)
    ids: list[str] = []
    try:
        p("load", "-i", str(compat_images.busybox))
        yield p
    finally:
        problems = []
        ids = p("ps", "-aq", "--no-trunc", check=False).stdout.split()
        if ids:
            p("rm", "-f", "-t", "0", *ids, check=False)
        strays = kill_strays(base)
        if strays:
            problems.append(f"processes left running: {strays}")
        left = unmount_under(base)
        if left:
            problems.append(f"mounts left under {base}: {left}")
        left = remove_cgroup_tree(parent)
        if left:
            problems.append(f"cgroups left: {left}")
        for cid in ids:
            if runtime_state(cid) is not None:
                subprocess.run([RUNTIME, "delete", "--force", cid], capture_output=True)
                problems.append(f"portique-runtime still had {cid}")
        assert not problems, "; ".join(problems)


def _assert_gone(podman: Podman, cid: str) -> None:
    assert runtime_state(cid) is None
    assert not cgroup_dirs(f"{podman.cgroup_parent}/libpod-{cid}")
    assert not [m for m in mounts_under(podman.base) if cid in m]


def test_run_output_and_exit_code(podman: Podman) -> None:
    out = podman.ok(
        *podman.run_args, "--rm", BUSYBOX, "sh", "-c", "echo hello from podman; echo pid $$"
    )
    assert out == "hello from podman\npid 1\n"
    failed = podman(*podman.run_args, "--rm", BUSYBOX, "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    # podman's codes: 127 for a command that does not exist.
    missing = podman(*podman.run_args, "--rm", BUSYBOX, "no-such-command", check=False)
    assert missing.returncode == 127, missing.stderr


def test_interactive_tty(podman: Podman) -> None:
    term = Terminal([*podman.argv, *podman.run_args, "--rm", "-it", BUSYBOX, "sh"], podman.env)
    try:
        term.expect(b"# ")
        term.send(b"tty; echo $((6*7)); exit 5\r")
        assert term.wait() == 5
    finally:
        term.close()
    assert b"/dev/pts/0" in term.buf
    assert b"\n42" in term.buf

    cid = podman.ok(*podman.run_args, "-d", BUSYBOX, "sleep", "1000").strip()
    try:
        term = Terminal([*podman.argv, "exec", "-it", cid, "sh"], podman.env)
        try:
            term.expect(b"# ")
            term.send(b"tty; exit 4\r")
            assert term.wait() == 4
        finally:
            term.close()
        assert b"/dev/pts/" in term.buf
    finally:
        podman("rm", "-f", "-t", "0", cid, check=False)
    _assert_gone(podman, cid)


def test_detached_exec_pause_memory_update_stop_rm(podman: Podman) -> None:
    cid = podman.ok(*podman.run_args, "-d", "--memory", "64m", BUSYBOX, "sh", "-c", WAITER).strip()
    try:
        wait_for("started in logs", lambda: "started" in podman.ok("logs", cid))
        state = runtime_state(cid)
        assert state is not None, "portique-runtime does not hold the container"
        assert state["status"] == "running"
        assert state["pid"] == int(podman.inspect(cid, "{{.State.Pid}}"))

        out = podman.ok("exec", cid, "sh", "-c", "echo exec ok; ps -o pid,args")
        assert "exec ok" in out
        assert "sleep 1000" in out
        assert podman("exec", cid, "sh", "-c", "exit 4", check=False).returncode == 4

        limit = podman.memory_limit(cid)
        assert limit.read_text().strip() == str(64 << 20)
        podman.ok("update", "--memory", "100m", cid)  # `update --resources FILE`
        assert limit.read_text().strip() == str(100 << 20)

        podman.ok("pause", cid)
        assert podman.inspect(cid, "{{.State.Status}}") == "paused"
        assert (runtime_state(cid) or {})["status"] == "paused"
        podman.ok("unpause", cid)
        assert podman.inspect(cid, "{{.State.Status}}") == "running"

        podman.ok("stop", "-t", "30", cid)
        assert podman.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
        assert podman.ok("logs", cid) == "started\ngot term\n"
        podman.ok("rm", cid)
    finally:
        podman("rm", "-f", "-t", "0", cid, check=False)
    _assert_gone(podman, cid)
