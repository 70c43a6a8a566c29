"""dockerd runs its containers with portique-runtime (issue 12, item 6).

Debian's dockerd (20.10) is started by the fixture as a private daemon: its
own config file, data root, exec root, unix socket and pid file, cgroupfs
under a `portique/compat-dockerd-*` cgroup parent, and no bridge, iptables
or forwarding, so it leaves the host's network alone (containers run with
`--network none`). portique-runtime is registered with `--add-runtime
portique=PATH`, exactly as a user would; dockerd's own containerd and its
stock runc shim (containerd-shim-runc-v2) then call it with runc's command
line. The docker CLI on PATH (28.x here, or Debian's 20.10) talks to it; the
image is a busybox `docker load`ed from `portique save`.

Each test checks that portique-runtime, not runc, holds the container:
`portique-runtime --root EXEC_ROOT/runtime-runc/moby state ID` answers for
it (dockerd keeps every runtime's state under that root).

A second daemon with `--default-runtime portique` serves a whole session:
run, exec, stop, a legacy `docker build` whose RUN steps go through the
runtime, and rm, with no `--runtime` flag anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.compat_images import RUNTIME, CompatImages
from support.daemons import (
    Daemon,
    cgroup_dirs,
    kill_pidfile,
    kill_strays,
    memory_limit_file,
    mounts_under,
    remove_cgroup_tree,
    unmount_under,
)
from support.terminal import Terminal

pytestmark = [pytest.mark.compat, pytest.mark.root]

RUN = ("run", "--runtime", "portique", "--network", "none")
# A shell that says it started, then waits; SIGTERM makes it say so and exit 7.
WAITER = "echo started; trap 'echo got term; exit 7' TERM; sleep 1000 & wait"


class Docker:
    """The docker CLI pointed at one private dockerd."""

    def __init__(self, base: Path, daemon: Daemon, cgroup_parent: str) -> None:
        self.base = base
        self.daemon = daemon
        self.exec_root = base / "exec"
        self.cgroup_parent = cgroup_parent
        self.env = dict(
            os.environ,
            DOCKER_HOST=f"unix://{base / 'docker.sock'}",
            DOCKER_CONFIG=str(base / "cli"),
        )
        self.env.pop("DOCKER_CONTEXT", None)

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["docker", *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}\n"
                f"dockerd log:\n{self.daemon.log_tail(2000)}"
            )
        return proc

    def ok(self, *args: str) -> str:
        return self(*args).stdout

    def inspect(self, cid: str, template: str) -> str:
        return self.ok("inspect", "-f", template, cid).strip()

    def runtime_state(self, cid: str) -> dict[str, object] | None:
        """portique-runtime's own view of the container, None if it has none."""
        for root in sorted(self.exec_root.glob("runtime-*/moby")):
            proc = subprocess.run(
                [RUNTIME, "--root", str(root), "state", cid],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if proc.returncode == 0:
                state: dict[str, object] = json.loads(proc.stdout)
                return state
        return None

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
            time.sleep(0.05)

    def memory_limit(self, cid: str) -> Path:
        return memory_limit_file(f"{self.cgroup_parent}/{cid}")


@contextlib.contextmanager
def dockerd(base: Path, images: CompatImages, *extra: str) -> Iterator[Docker]:
    assert shutil.which("dockerd"), "dockerd is missing: scripts/setup.sh installs docker.io"
    assert shutil.which("docker"), "the docker CLI is missing: scripts/setup.sh installs docker.io"
    base.mkdir(parents=True, exist_ok=True)
    parent = f"portique/compat-dockerd-{os.getpid()}-{base.name}"
    # deprecated-key-path: dockerd 20.10 would otherwise write /etc/docker/key.json.
    config = base / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
    argv = [
        "dockerd",
        "--config-file", str(config),
        "--data-root", str(base / "data"),
        "--exec-root", str(base / "exec"),
        "--host", f"unix://{base / 'docker.sock'}",
        "--pidfile", str(base / "docker.pid"),
        "--exec-opt", "native.cgroupdriver=cgroupfs",
        "--cgroup-parent", f"/{parent}",
        "--bridge", "none",
        "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
        "--userland-proxy=false",
        "--add-runtime", f"portique={RUNTIME}",
        *extra,
    ]  # fmt: skip
    daemon = Daemon("dockerd", argv, base / "dockerd.log")
    docker = Docker(base, daemon, parent)
    try:
        daemon.wait_until(
            lambda: (
                (base / "docker.sock").exists()
                and docker("version", check=False, timeout=30).returncode == 0
            ),
            "answering on its socket",
        )
        docker("load", "-i", str(images.busybox))
        yield docker
    finally:
        problems = []
        if daemon.proc.poll() is None:
            ids = docker("ps", "-aq", check=False).stdout.split()
            if ids:
                docker("rm", "-f", *ids, check=False)
        daemon.stop()
        # dockerd stops the containerd it started; make sure of it.
        kill_pidfile(base / "exec/containerd/containerd.pid")
        strays = kill_strays(
            base, (base / "exec/containerd/daemon/io.containerd.runtime.v2.task/moby",)
        )
        if strays:
            problems.append(f"processes left running: {strays}")
        left = unmount_under(base)
        if left:
            problems.append(f"mounts left under {base}: {left}")
        left = remove_cgroup_tree(parent)
        if left:
            problems.append(f"cgroups left: {left}")
        assert not problems, "; ".join(problems)


@pytest.fixture(scope="module")
def docker(
    tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages
) -> Iterator[Docker]:
    with dockerd(tmp_path_factory.mktemp("dockerd"), compat_images) as d:
        yield d


def _assert_gone(docker: Docker, cid: str) -> None:
    assert docker.runtime_state(cid) is None
    assert not cgroup_dirs(f"{docker.cgroup_parent}/{cid}")
    assert not [m for m in mounts_under(docker.base) if cid in m]


def test_foreground_output_and_exit_codes(docker: Docker) -> None:
    out = docker.ok(*RUN, "--rm", "busybox", "sh", "-c", "echo hello from dockerd; echo pid $$")
    assert out == "hello from dockerd\npid 1\n"
    assert docker(*RUN, "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    # dockerd maps runc's wording to Docker's exit codes: 127 not found, 126 not executable.
    missing = docker(*RUN, "--rm", "busybox", "no-such-command", check=False)
    assert missing.returncode == 127, missing.stderr
    assert "executable file not found" in missing.stderr
    noexec = docker(*RUN, "--rm", "busybox", "/etc/passwd", check=False)
    assert noexec.returncode == 126, noexec.stderr
    assert "permission denied" in noexec.stderr


def test_detached_exec_logs_pause_stop_restart_kill_rm(docker: Docker) -> None:
    cid = docker.ok(*RUN, "-d", "busybox", "sh", "-c", WAITER).strip()
    try:
        docker.wait_for("started in logs", lambda: "started" in docker.ok("logs", cid))
        state = docker.runtime_state(cid)
        assert state is not None, "portique-runtime does not hold the container"
        assert state["status"] == "running"
        assert state["pid"] == int(docker.inspect(cid, "{{.State.Pid}}"))

        out = docker.ok("exec", cid, "sh", "-c", "echo exec ok; ps -o pid,args")
        assert "exec ok" in out
        assert "sleep 1000" in out  # the exec shares the container's pid namespace
        assert docker("exec", cid, "sh", "-c", "exit 4", check=False).returncode == 4

        docker.ok("pause", cid)
        assert docker.inspect(cid, "{{.State.Status}}") == "paused"
        assert (docker.runtime_state(cid) or {})["status"] == "paused"
        docker.ok("unpause", cid)
        assert docker.inspect(cid, "{{.State.Status}}") == "running"

        docker.ok("stop", "-t", "30", cid)
        assert docker.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
        assert docker.ok("logs", cid) == "started\ngot term\n"

        docker.ok("start", cid)
        assert docker.inspect(cid, "{{.State.Status}}") == "running"
        first = docker.inspect(cid, "{{.State.Pid}}")
        docker.ok("restart", "-t", "30", cid)
        assert docker.inspect(cid, "{{.State.Status}}") == "running"
        assert docker.inspect(cid, "{{.State.Pid}}") != first
        assert (docker.runtime_state(cid) or {})["status"] == "running"

        docker.ok("kill", cid)
        assert docker.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
        docker.ok("rm", cid)
    finally:
        docker("rm", "-f", cid, check=False)
    _assert_gone(docker, cid)


def test_interactive_tty(docker: Docker) -> None:
    term = Terminal(["docker", *RUN, "--rm", "-it", "busybox", "sh"], docker.env)
    try:
        term.expect(b"# ")
        term.send(b"tty; echo $((6*7)); exit 5\r")
        assert term.wait() == 5
    finally:
        term.close()
    assert b"/dev/pts/0" in term.buf
    assert b"\n42" in term.buf

    cid = docker.ok(*RUN, "-d", "busybox", "sleep", "1000").strip()
    try:
        term = Terminal(["docker", "exec", "-it", cid, "sh"], docker.env)
        try:
            term.expect(b"# ")
            term.send(b"tty; exit 4\r")
            assert term.wait() == 4
        finally:
            term.close()
        assert b"/dev/pts/" in term.buf
    finally:
        docker("rm", "-f", cid, check=False)


def test_limits_and_confinement(docker: Docker) -> None:
    read_limits = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
        " 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    )
    out = docker.ok(
        *RUN, "--rm", "--memory", "64m", "--pids-limit", "50", "busybox", "sh", "-c", read_limits
    )
    assert out.split() == [str(64 << 20), "50"]

    caps = docker(*RUN, "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c",
                  "grep CapEff /proc/self/status; chown 1 /tmp", check=False)  # fmt: skip
    assert caps.stdout == "CapEff:\t0000000000000000\n"
    assert caps.returncode == 1
    assert "Operation not permitted" in caps.stderr

    ro = docker(*RUN, "--rm", "--read-only", "busybox", "touch", "/file", check=False)
    assert ro.returncode == 1
    assert "Read-only file system" in ro.stderr

    assert docker.ok(*RUN, "--rm", "--user", "1:1", "busybox", "id") == (
        "uid=1(daemon) gid=1(daemon) groups=1(daemon)\n"
    )
    assert docker.ok(*RUN, "--rm", "--user", "nobody", "busybox", "id", "-u") == "65534\n"

    # docker update: the runc shim hands the runtime dockerd's whole resources
    # object, zeros included (kernel: 0, shares: 0), through `update --resources -`.
    cid = docker.ok(*RUN, "-d", "--memory", "64m", "busybox", "sleep", "1000").strip()
    try:
        limit = docker.memory_limit(cid)
        assert limit.read_text().strip() == str(64 << 20)
        docker.ok("update", "--memory", "100m", "--memory-swap", "200m", cid)
        assert limit.read_text().strip() == str(100 << 20)
    finally:
        docker("rm", "-f", cid, check=False)
    _assert_gone(docker, cid)


def test_default_runtime_for_a_whole_session(
    tmp_path_factory: pytest.TempPathFactory, compat_images: CompatImages
) -> None:
    base = tmp_path_factory.mktemp("dockerd-default")
    with dockerd(base, compat_images, "--default-runtime", "portique") as d:
        assert d.ok("info", "-f", "{{.DefaultRuntime}}").strip() == "portique"
        net = ("--network", "none")
        assert d.ok("run", "--rm", *net, "busybox", "echo", "hi") == "hi\n"

        ctx = base / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            "FROM busybox:latest\n"
            "RUN echo built by portique > /built && grep -c . /proc/self/mountinfo > /mounts\n"
            'CMD ["cat", "/built"]\n'
        )
        # The legacy builder runs each RUN step as a container of the default runtime.
        d(
            "build",
            "--network",
            "none",
            "-t",
            "built:1",
            str(ctx),
            env=dict(d.env, DOCKER_BUILDKIT="0"),
        )
        assert d.ok("run", "--rm", *net, "built:1") == "built by portique\n"

        cid = d.ok("run", "-d", *net, "built:1", "sh", "-c", WAITER).strip()
        try:
            assert d.inspect(cid, "{{.HostConfig.Runtime}}") == "portique"
            d.wait_for("started in logs", lambda: "started" in d.ok("logs", cid))
            assert (d.runtime_state(cid) or {}).get("status") == "running"
            assert d.ok("exec", cid, "cat", "/built") == "built by portique\n"
            d.ok("stop", cid)
            assert d.inspect(cid, "{{.State.ExitCode}}") == "7"
            d.ok("rm", cid)
        finally:
            d("rm", "-f", cid, check=False)
        _assert_gone(d, cid)
