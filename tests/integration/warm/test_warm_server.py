"""The warm fork-server (portique/warm) against the in-process CLI: the same output
and exit codes, containers that outlive the server, a stale installation never
served, crashes and killed clients that leave the server serving."""

from __future__ import annotations

import functools
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import portique
from portique.warm import client
from support.engine_cli import PORTIQUE
from support.warm import Modes, children, comm, spares, workers

NONE = ("--network", "none")


def wait_for(fact: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not fact():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # poll interval


def test_socket_is_roots_alone(modes: Modes) -> None:
    st = os.stat(modes.runroot / "warm.sock")
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0


def test_the_server_holds_only_its_own_fds(modes: Modes) -> None:
    # Its stdio (/dev/null, warm.log), then close-on-exec fds of its own (lock,
    # wakeup pipe, socket): nothing its starter had open (a caller's pipe would
    # never see its end).
    server = modes.server_pid()
    assert server is not None
    for name in os.listdir(f"/proc/{server}/fd"):
        if int(name) <= 2:
            continue
        flags = next(
            int(line.split()[1], 8)
            for line in Path(f"/proc/{server}/fdinfo/{name}").read_text().splitlines()
            if line.startswith("flags:")
        )
        target = os.readlink(f"/proc/{server}/fd/{name}")
        assert flags & os.O_CLOEXEC, f"fd {name} ({target}) is not the server's own"


def test_output_and_exit_codes_are_the_same_both_ways(modes: Modes) -> None:
    cases: list[tuple[list[str], str | None]] = [
        (["--version"], None),
        (["ps", "-a", "--format", "{{.Names}}"], None),
        (["nosuch"], None),
        (["ps", "--bogus"], None),
        (["inspect", "nosuch"], None),
        (["run", "--rm", *NONE, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"], None),
        (["run", "--rm", *NONE, "busybox", "nosuchcmd"], None),
        (["run", "--rm", *NONE, "busybox", "ls", "/proc/self/fd"], None),
        (["run", "--rm", "-i", *NONE, "busybox", "sh", "-c", "cat; echo; wc -c"], "hello\n"),
        (
            [
                "run",
                "--rm",
                *NONE,
                "-e",
                "WARM_TEST_VAR",
                "busybox",
                "sh",
                "-c",
                "echo $WARM_TEST_VAR",
            ],
            None,
        ),
    ]
    for args, stdin in cases:
        cold = modes.cold(*args, input=stdin)
        warm = modes.warm(*args, input=stdin)
        assert (warm.returncode, warm.stdout, warm.stderr) == (
            cold.returncode,
            cold.stdout,
            cold.stderr,
        ), args
    assert modes.server_pid() is not None


def test_exec_is_the_same_both_ways(modes: Modes) -> None:
    cid = modes.warm.ok("run", "-d", *NONE, "busybox", "sleep", "300").strip()
    try:
        for args in (
            ["exec", cid, "sh", "-c", "echo in; echo err >&2; exit 7"],
            ["exec", cid, "ls", "/proc/self/fd"],
            ["exec", cid, "nosuchcmd"],
        ):
            cold, warm = modes.cold(*args), modes.warm(*args)
            assert (warm.returncode, warm.stdout, warm.stderr) == (
                cold.returncode,
                cold.stdout,
                cold.stderr,
            ), args
    finally:
        modes.cold.ok("rm", "-f", cid)


def test_worker_takes_clients_cwd_umask_and_environment(modes: Modes, tmp_path: Path) -> None:
    env = dict(modes.warm.env, WARM_TEST_VAR="from-the-client")
    out = subprocess.run(
        [
            PORTIQUE,
            "run",
            "--rm",
            *NONE,
            "-e",
            "WARM_TEST_VAR",
            "busybox",
            "sh",
            "-c",
            "echo $WARM_TEST_VAR",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout == "from-the-client\n"
    subprocess.run(
        [PORTIQUE, "image", "save", "-o", "relative.tar", "busybox"],
        env=modes.warm.env,
        cwd=tmp_path,
        umask=0o077,
        check=True,
        timeout=60,
    )
    assert stat.S_IMODE((tmp_path / "relative.tar").stat().st_mode) & 0o077 == 0


def test_containers_survive_the_server(modes: Modes) -> None:
    cid = modes.warm.ok("run", "-d", *NONE, "busybox", "sleep", "300").strip()
    try:
        pid = int(modes.warm.inspect(cid, "{{.State.Pid}}"))
        server = modes.server_pid()
        assert server is not None
        modes.stop()
        assert modes.server_pid() is None
        assert not (modes.runroot / "warm.sock").exists()
        assert spares(modes.runroot) == []  # reaped by the server before it exited
        os.kill(pid, 0)  # still there
        assert modes.cold.inspect(cid, "{{.State.Status}}") == "running"
        assert modes.cold.ok("exec", cid, "echo", "alive") == "alive\n"
        modes.start()
        modes.warm.ok("stop", "-t", "1", cid)
        assert modes.cold.inspect(cid, "{{.State.ExitCode}}") == "137"
    finally:
        modes.cold("rm", "-f", cid)
        if modes.server_pid() is None:
            modes.start()


def test_a_changed_installation_is_not_served(modes: Modes) -> None:
    server = modes.server_pid()
    assert server is not None
    marker = Path(portique.__file__).parent / "warm" / "__init__.py"
    before = marker.stat()
    os.utime(marker, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        out = modes.warm("--version")
        assert (out.returncode, out.stdout) == (0, f"portique version {portique.__version__}\n")
        wait_for(lambda: modes.server_pid() is None, "the stale server to exit")
    finally:
        os.utime(marker, ns=(before.st_atime_ns, before.st_mtime_ns))
        modes.start()
    assert modes.warm.ok("--version") == out.stdout


def test_a_rewritten_file_is_not_served(modes: Modes) -> None:
    # Rewritten in place with its mtime put back (the same size and inode): a
    # fingerprint of the files' stat does not see it, the server's inotify
    # watch does; and the spare, forked before the change, checks at the
    # command, not at its fork.
    server = modes.server_pid()
    assert server is not None
    runroot = str(modes.runroot)
    assert client.run(["portique", "--version"], runroot) == 0
    wait_for(lambda: spares(modes.runroot), "a spare worker")
    marker = Path(portique.__file__).parent / "warm" / "__init__.py"
    before = marker.stat()
    with open(marker, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(data)  # the same bytes: only the mtime to put back
    os.utime(marker, ns=(before.st_atime_ns, before.st_mtime_ns))
    try:
        assert client.run(["portique", "--version"], runroot) is None  # refused: in-process
        wait_for(lambda: modes.server_pid() is None, "the stale server to exit")
        assert spares(modes.runroot) == []  # its spare went with it
    finally:
        modes.start()
    assert client.run(["portique", "--version"], runroot) == 0


def test_a_crashing_worker_leaves_the_server_serving(modes: Modes) -> None:
    server = modes.server_pid()
    env = dict(modes.warm.env, PORTIQUE_FAULT="create.committed")
    killed = subprocess.run(
        [PORTIQUE, "create", *NONE, "busybox", "true"], env=env, capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL  # as the in-process CLI would die
    cold = subprocess.run(
        [PORTIQUE, "create", *NONE, "busybox", "true"],
        env=dict(env, PORTIQUE_WARM="off"),
        capture_output=True,
        timeout=60,
    )
    assert cold.returncode == -signal.SIGKILL
    assert modes.server_pid() == server
    assert modes.warm.ok("--version").startswith("portique version")
    wait_for(lambda: not workers(server or 0), "the server to have no worker")
    ids = modes.cold.ok("ps", "-aq").split()
    if ids:
        modes.cold.ok("rm", "-f", *ids)


def test_a_run_that_fails_leaves_no_early_monitor(modes: Modes) -> None:
    """A warm `run` asks for its monitor before it makes the container's row
    (engine/prefork.py): when the row cannot be made, that monitor and its
    child, waiting for an id, must end (the zygote's children are monitors)."""
    server = modes.server_pid()
    (zygote,) = [c for c in children(server or 0) if comm(c) == "pq-zygote"]
    modes.warm.ok("create", "--name", "taken", *NONE, "busybox", "true")
    try:
        for args in (("--name", "taken"), ()):  # a name conflict, an image not found
            image = "busybox" if args else "no-such-image-here"
            p = modes.warm("run", *args, *NONE, image, "true")
            cold = modes.cold("run", *args, *NONE, image, "true")
            assert (p.returncode, p.stderr) == (cold.returncode, cold.stderr)
            assert p.returncode == 125, p.stderr
            wait_for(lambda: not children(zygote), "the early monitor to end")
    finally:
        modes.cold.ok("rm", "-f", "taken")


def reaped(pid: int, parent: int) -> bool:
    return pid not in children(parent)


def test_a_spare_that_dies_leaves_the_server_serving(modes: Modes) -> None:
    server = modes.server_pid()
    runroot = str(modes.runroot)
    # A command handed to a spare as it dies would see its worker die before
    # accepting: refused, run in-process. Once the server reaped the spare,
    # the next command's worker is forked at its accept.
    for _ in range(2):  # then the next spare, forked after that command
        wait_for(lambda: spares(modes.runroot), "a spare worker")
        (spare,) = spares(modes.runroot)
        os.kill(spare, signal.SIGKILL)
        wait_for(functools.partial(reaped, spare, server or 0), "the spare to be reaped")
        assert client.run(["portique", "--version"], runroot) == 0
        assert modes.server_pid() == server
    wait_for(lambda: not workers(server or 0), "the server to have no worker")


def test_a_killed_client_takes_its_worker_with_it(modes: Modes) -> None:
    server = modes.server_pid()
    assert server is not None
    proc = subprocess.Popen(
        [
            PORTIQUE,
            "run",
            "--name",
            "killed-client",
            *NONE,
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 300",
        ],
        env=modes.warm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        assert len(workers(server)) == 1
        proc.kill()
        proc.wait()
        wait_for(lambda: not workers(server), "the worker to be killed and reaped")
        # As after the in-process CLI's death: the container runs on under its monitor.
        assert modes.cold.inspect("killed-client", "{{.State.Status}}") == "running"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        modes.cold("rm", "-f", "killed-client")


def test_signals_reach_the_command(modes: Modes) -> None:
    script = 'trap "echo got-term; exit 5" TERM; echo ready; while :; do sleep 0.1; done'
    results = []
    for runner in (modes.cold, modes.warm):
        proc = subprocess.Popen(
            [PORTIQUE, "run", "--rm", *NONE, "busybox", "sh", "-c", script],
            env=runner.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        results.append((proc.returncode, out, err))
    assert results[0] == results[1] == (5, b"got-term\n", b"")


def test_other_uids_are_refused(modes: Modes) -> None:
    sock = modes.runroot / "warm.sock"
    probe = (
        "import sys\nfrom portique.warm import client\n"
        "print(client.run(['portique', '--version'], sys.argv[1]))\n"
    )
    argv = [sys.executable, "-c", probe, str(modes.runroot)]
    env = {"PATH": os.environ["PATH"]}
    os.chmod(modes.runroot, 0o711)
    try:
        # The socket is 0600: another uid cannot even connect...
        out = subprocess.run(argv, user=65534, env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout == "None\n", out.stderr
        # ...and, let connect, is refused after SO_PEERCRED.
        os.chmod(sock, 0o666)
        out = subprocess.run(argv, user=65534, env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout == "None\n", out.stderr
    finally:
        os.chmod(sock, 0o600)
        os.chmod(modes.runroot, 0o700)
