"""Container processes do not inherit the caller's session keyring.

The session keyring survives fork and execve: a runtime started from a login
session (or a service with keys of its own) handed it to every container
process, and a profile that allows keyctl read the keys in it. As runc does,
each container process (the init, each exec) first joins a new session
keyring, unless `create/run --no-new-keyring`.

The caller here is the probe (tests/support/confprobe.c): it joins a fresh
session keyring, puts a secret in it, prints its serial, then execs the
runtime; inside, the probe asks for its session keyring and searches it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.confprobe import build_confprobe
from support.rtcli_bundle import RuntimeCLI, make_bundle, unique_id


@pytest.fixture(scope="module")
def probe_rootfs(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("keyring")
    rootfs = base / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.copy2(build_confprobe(base), rootfs / "confprobe")
    return rootfs


def _facts(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _as_keyed_caller(
    rt: RuntimeCLI, probe: Path, secret: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`portique-runtime ARGS` run by a caller whose session keyring holds `secret`."""
    return subprocess.run(
        [str(probe), "newsession", "portique-test-secret", secret, *rt.argv(*args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PROBE = ["sh", "-c", "/confprobe session; /confprobe readkey portique-test-secret session"]


@pytest.mark.parametrize("no_new_keyring", [False, True])
def test_run_and_exec_get_a_session_keyring_of_their_own(
    rt: RuntimeCLI,
    tmp_path: Path,
    probe_rootfs: Path,
    no_new_keyring: bool,
) -> None:
    probe = probe_rootfs / "confprobe"
    secret = os.urandom(8).hex()
    flags = ["--no-new-keyring"] if no_new_keyring else []
    run_bundle = make_bundle(tmp_path / "run", probe_rootfs, PROBE)
    ran = _as_keyed_caller(rt, probe, secret, "run", *flags, "-b", str(run_bundle), unique_id())
    assert ran.returncode in (0, 1), ran.stderr
    got = _facts(ran.stdout)
    cid = unique_id()
    rt("run", "-d", *flags, "-b", str(make_bundle(tmp_path / "exec", probe_rootfs)), cid)
    execd = _as_keyed_caller(rt, probe, secret, "exec", cid, *PROBE)
    rt("delete", "--force", cid)
    assert execd.returncode in (0, 1), execd.stderr
    in_exec = _facts(execd.stdout)
    if no_new_keyring:
        # runc's --no-new-keyring: the caller's own keyring, secret and all,
        # for exec too (the container remembers the flag).
        for facts in (got, in_exec):
            assert facts["session"] == facts["caller"]
            assert facts["readkey"] == f"ok secret={secret}"
    else:
        assert got["session"] not in (got["caller"], "ENOKEY")
        assert got["readkey"] == "ENOKEY"
        assert in_exec["session"] not in (in_exec["caller"], "ENOKEY")
        assert in_exec["readkey"] == "ENOKEY"
