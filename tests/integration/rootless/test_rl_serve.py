"""Issue 15 item 7: `portique serve` as the user, on
$XDG_RUNTIME_DIR/portique/docker.sock, driven by the real docker CLI run as
that user: its containers are the user's rootless engine's."""

from __future__ import annotations

import os
import signal
import subprocess

from support.api_server import DOCKER
from support.rootless_cli import UserPortique, wait_for


def test_serve_as_the_user(upq: UserPortique) -> None:
    sock = upq.runroot / "docker.sock"
    serve = subprocess.Popen(
        upq.argv("serve"),
        env=upq.env,
        cwd=upq.base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(sock.is_socket, timeout=60), "serve never listened"
        st = sock.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (upq.uid, upq.gid, 0o660)
        # The docker CLI as the user: a config dir of its own, the user's socket.
        env = dict(upq.env, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(upq.base / "home"))

        def docker(*args: str) -> str:
            proc = subprocess.run(
                ["setpriv", f"--reuid={upq.uid}", f"--regid={upq.gid}", "--clear-groups",
                 "--", DOCKER, *args],
                env=env, capture_output=True, text=True, timeout=120,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
            return proc.stdout

        assert "name=rootless" in docker("info", "--format", "{{.SecurityOptions}}")
        out = docker("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                     "id -u; cat /proc/self/uid_map")  # fmt: skip
        inside, mapping = out.split("\n", 1)
        assert inside == "0"
        assert mapping.split()[:2] == ["0", str(upq.uid)]  # root inside is the user
        cid = docker("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
        assert docker("exec", cid, "echo", "hi") == "hi\n"
        # The same container through the user's CLI: one engine, two faces.
        assert cid in upq.ok("ps", "-q", "--no-trunc")
        docker("rm", "-f", cid)
        assert cid not in upq.ok("ps", "-aq", "--no-trunc")
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            _, err = serve.communicate(timeout=60)
        finally:
            if serve.poll() is None:
                os.kill(serve.pid, signal.SIGKILL)
                serve.wait()
    assert serve.returncode == 0, err
    assert not sock.exists()
