"""The escape through the host's interpreter (issue 9, item 1), through every face.

Each test starts the runtime or the CLI from a private copy of the
interpreter that no other process executes, runs the attack of
support/escape.py, and checks: the copy is byte for byte unchanged; the
container's write through /proc/self/fd/N failed; and what the container's
first process ran before its own execve (/proc/self/exe, seen from inside
and, for the runtime, by a createRuntime hook reading /proc/<init>/exe) is not
the copy but a sealed memfd. Faces: portique-runtime run -d, create + start
and exec; portique run, exec, a restart by the monitor, a build's RUN step;
the `#!/proc/self/exe` shell. Before the fix, the runtime faces rewrote the
copy and the others ran the container from it (a monitor or the build still
executing it blocked the write with ETXTBSY, by luck). The last test attacks
the read-only interpreter setup.sh installs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.linux import mount as m
from portique.linux.selfexe import mount_read_only
from support.escape import (
    ATTACK_ARGS,
    PROBE,
    RESTART_ATTACK,
    SEAL_ALL,
    SHEBANG_ARGS,
    Interpreter,
    Outbox,
    PortiqueFrom,
    Report,
    RuntimeFrom,
)


def assert_contained(interp: Interpreter, report: Report) -> None:
    assert interp.unchanged(), "the container rewrote the host's interpreter"
    assert not report.wrote, "the container wrote to the interpreter it was started from"
    assert report.write_error, "the shell reported no error for the refused write"
    # What the container holds is a private, sealed copy: not the host's file.
    assert report.exe_ident != interp.ident
    assert report.exe_seals == SEAL_ALL


@pytest.mark.parametrize("kind", ["plain", "shebang"])
def test_runtime_run_detached(
    kind: str,
    runtime: RuntimeFrom,
    interp: Interpreter,
    outbox: Outbox,
    attack_rootfs: dict[str, Path],
    tmp_path: Path,
) -> None:
    args = ATTACK_ARGS if kind == "plain" else SHEBANG_ARGS
    bundle = runtime.bundle(tmp_path / "bundle", attack_rootfs[kind], args, outbox)
    runtime("run", "-d", "--bundle", str(bundle), f"atk-{kind}")
    # The runtime has exited: nothing executes the copy any more.
    report = outbox.finish()
    assert outbox.hook_report() == report.exe_ident
    assert_contained(interp, report)


def test_runtime_create_start(
    runtime: RuntimeFrom,
    interp: Interpreter,
    outbox: Outbox,
    attack_rootfs: dict[str, Path],
    tmp_path: Path,
) -> None:
    bundle = runtime.bundle(tmp_path / "bundle", attack_rootfs["plain"], ATTACK_ARGS, outbox)
    runtime("create", "--bundle", str(bundle), "atk-cs")
    hook = outbox.hook_report()  # the init, waiting to execve, created by a runtime now gone
    assert hook != interp.ident
    runtime("start", "atk-cs")
    report = outbox.finish()
    assert hook == report.exe_ident
    assert_contained(interp, report)


def test_runtime_exec(
    runtime: RuntimeFrom,
    interp: Interpreter,
    outbox: Outbox,
    attack_rootfs: dict[str, Path],
    tmp_path: Path,
) -> None:
    bundle = runtime.bundle(
        tmp_path / "bundle", attack_rootfs["plain"], ["/bin/busybox", "sleep", "600"], outbox
    )
    runtime("run", "-d", "--bundle", str(bundle), "atk-exec")
    runtime("exec", "-d", "atk-exec", *ATTACK_ARGS)
    assert_contained(interp, outbox.finish())


@pytest.mark.parametrize("kind", ["plain", "shebang"])
def test_portique_run(
    kind: str, portique: PortiqueFrom, interp: Interpreter, outbox: Outbox
) -> None:
    args = ATTACK_ARGS if kind == "plain" else SHEBANG_ARGS
    portique("run", "-d", "--network", "none", "-v", f"{outbox.path}:/out", f"attack:{kind}", *args)
    assert_contained(interp, outbox.finish())


def test_portique_exec(portique: PortiqueFrom, interp: Interpreter, outbox: Outbox) -> None:
    cid = portique(
        "run",
        "-d",
        "--network",
        "none",
        "-v",
        f"{outbox.path}:/out",
        "attack:plain",
        "/bin/busybox",
        "sleep",
        "600",
    ).stdout.strip()
    portique("exec", "-d", cid, *ATTACK_ARGS)
    assert_contained(interp, outbox.finish())


def test_portique_restart(portique: PortiqueFrom, interp: Interpreter, outbox: Outbox) -> None:
    # The first start exits 1; the monitor (no CLI left) starts the attack.
    portique(
        "run",
        "-d",
        "--network",
        "none",
        "--restart",
        "on-failure",
        "-v",
        f"{outbox.path}:/out",
        "attack:plain",
        "/proc/self/exe",
        "-I",
        "-S",
        "-c",
        RESTART_ATTACK,
    )
    assert_contained(interp, outbox.finish())


def test_portique_build_run_step(
    portique: PortiqueFrom, interp: Interpreter, outbox: Outbox, tmp_path: Path
) -> None:
    # A RUN step runs while the build still executes the interpreter (ETXTBSY
    # then blocks the write), so check what it runs from: the probe leaves its
    # report in the image.
    context = tmp_path / "context"
    context.mkdir()
    step = ["/proc/self/exe", "-I", "-S", "-c", f'REPORT = "/exe"\n{PROBE}']
    (context / "Dockerfile").write_text(f"FROM attack:plain\nRUN {json.dumps(step)}\n")
    portique("build", "-t", "attack:built", str(context))
    portique(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{outbox.path}:/out",
        "attack:built",
        "/bin/busybox",
        "cp",
        "/exe",
        "/out/exe",
    )
    ident, _read_only, seals = outbox.exe_report()
    assert interp.unchanged()
    assert ident != interp.ident
    assert seals == SEAL_ALL


@pytest.fixture
def read_only_interp(interp: Interpreter) -> Iterator[Interpreter]:
    """The copy bind-mounted read-only onto itself, as scripts/setup.sh installs it."""
    mount_read_only(str(interp.path))
    yield interp
    m.umount(interp.path, m.MNT_DETACH)


def test_runtime_on_read_only_interpreter(
    read_only_interp: Interpreter,
    runtime: RuntimeFrom,
    outbox: Outbox,
    attack_rootfs: dict[str, Path],
    tmp_path: Path,
) -> None:
    # The fast path: the runtime runs on the file itself (no sealed copy), and
    # the container's reopen meets the read-only mount.
    bundle = runtime.bundle(tmp_path / "bundle", attack_rootfs["plain"], ATTACK_ARGS, outbox)
    runtime("run", "-d", "--bundle", str(bundle), "atk-ro")
    report = outbox.finish()
    assert read_only_interp.unchanged()
    assert report.exe_ident == read_only_interp.ident
    assert report.exe_read_only
    assert not report.opened
    assert "Read-only file system" in (outbox.path / "open.err").read_text()
    assert not report.wrote
