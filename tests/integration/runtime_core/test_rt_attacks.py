"""The attacks that hit runc, tried against this runtime.

CVE-2019-5736 class: a container process reaching the runtime's binary via
/proc/<pid>/exe while the runtime is visible inside the container.
CVE-2024-21626 class: a runtime fd left open into the container (as cwd or
through /proc/self/fd).
CVE-2025-31133 class: symlinks in the rootfs redirecting /dev/null masks or
mount targets out of the container.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

from portique.errors import PortiqueError
from portique.oci.runtime import parse_process
from portique.runtime import Runtime, Status
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, kv, new_id, run_container


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_runtime_exe_unreachable_from_container(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """A created container's PID 1 is still the runtime's (Python) process,
    visible to anything exec'd into the container: it must be non-dumpable
    so neither its exe nor its fds can be opened from inside."""
    interpreter = os.path.realpath(sys.executable)
    before = _sha(interpreter)
    out = Outputs(tmp_path)
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    init = rt.create(cid, bundle, stdio=out.stdio)
    # still the runtime: our own interpreter (setup.sh's read-only file, or a sealed copy)
    assert os.path.realpath(f"/proc/{init.pid}/exe") == os.path.realpath("/proc/self/exe")
    probe = (
        "readlink /proc/1/exe >/dev/null 2>&1; echo readlink=$?;"
        "cat /proc/1/exe > /dev/null 2>&1; echo read=$?;"
        "echo pwned 2>/dev/null >> /proc/1/exe; echo write=$?;"
        "readlink /proc/1/fd/0 >/dev/null 2>&1; echo fdlink=$?;"
        "cat /proc/1/fd/0 </dev/null >/dev/null 2>&1; echo fdopen=$?;"
        "cat /proc/1/environ >/dev/null 2>&1; echo environ=$?"
    )
    proc = parse_process(
        {
            "args": ["sh", "-c", probe],
            "capabilities": {
                "bounding": ["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_KILL"],
                "effective": ["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_KILL"],
                "permitted": ["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_KILL"],
            },
        }
    )
    code = rt.exec(cid, proc, stdio=out.stdio)
    assert code == 0
    got = kv(out.text())
    assert got == {
        "readlink": "1",
        "read": "1",
        "write": "1",
        "fdlink": "1",
        "fdopen": "1",
        "environ": "1",
    }, out.text()
    assert _sha(interpreter) == before
    assert rt.state(cid).status is Status.CREATED
    rt.delete(cid, force=True)
    out.close()


def test_exec_helper_is_non_dumpable_while_inside(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """The exec helper joins the container's namespaces as Python; a process
    inside racing on every /proc/<pid>/exe must never open one that is ours."""
    interpreter = os.path.realpath(sys.executable)
    before = _sha(interpreter)
    out = Outputs(tmp_path)
    watcher = (
        "n=0; while [ $n -lt 4000 ]; do n=$((n+1));"
        " for p in /proc/[0-9]*; do"
        '  if [ "$(readlink $p/exe 2>/dev/null)" != "" ] && ! grep -q . /dev/null; then'
        "   case $(readlink $p/exe) in *python*) echo OPENED $p;; esac; fi;"
        " done; done"
    )
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sh", "-c", watcher]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    for _ in range(20):
        assert rt.exec(cid, parse_process({"args": ["true"]}), stdio=out.stdio) == 0
    assert "OPENED" not in out.text()
    assert _sha(interpreter) == before
    rt.delete(cid, force=True)
    out.close()


def _fds_of(pid: int) -> list[int]:
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def _wait_exec(pid: int, comm: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} never ran {comm}")


def test_no_runtime_fd_reaches_container(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    # An inheritable host directory fd in the runtime, as a careless caller leaves it.
    leak = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leak, True)
    out = Outputs(tmp_path)
    try:
        bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
        cid = new_id()
        s = rt.run(cid, bundle, detach=True, stdio=out.stdio)
        init = rt.state(cid).pid
        _wait_exec(init, "sleep")
        assert s == 0
        assert _fds_of(init) == [0, 1, 2]
        assert os.readlink(f"/proc/{init}/cwd") == "/"  # the container's root, seen from inside
        assert os.path.samefile(f"/proc/{init}/cwd", f"/proc/{init}/root")
        # Exec'd processes too.
        pid = rt.exec(cid, parse_process({"args": ["sleep", "30"]}), stdio=out.stdio, detach=True)
        _wait_exec(pid, "sleep")
        assert _fds_of(pid) == [0, 1, 2]
        # The runc attack: the leaked fd as the working directory.
        bad = parse_process({"args": ["pwd"], "cwd": f"/proc/self/fd/{leak}"})
        with pytest.raises(PortiqueError):
            rt.exec(cid, bad, stdio=out.stdio)
        rt.delete(cid, force=True)
        cfg = make_config(["pwd"])
        cfg["process"]["cwd"] = f"/proc/self/fd/{leak}"
        with pytest.raises(PortiqueError):
            run_container(rt, tmp_path, busybox_rootfs, cfg)
    finally:
        os.close(leak)
        out.close()


def test_preserved_fds_pass_on_purpose(rt: Runtime, tmp_path: Path, busybox_rootfs: Path) -> None:
    r, w = os.pipe()
    # preserve_fds counts from 3: place the pipe's write end there.
    saved = os.dup(3) if _is_open(3) else None
    os.dup2(w, 3, inheritable=False)
    try:
        bundle = make_bundle(
            tmp_path, busybox_rootfs, make_config(["sh", "-c", "echo through-fd3 >&3"])
        )
        out = Outputs(tmp_path)
        code = rt.run(new_id(), bundle, stdio=out.stdio, preserve_fds=1)
        out.close()
        assert code == 0
        os.close(3)
        os.close(w)
        assert os.read(r, 100) == b"through-fd3\n"
    finally:
        if saved is not None:
            os.dup2(saved, 3, inheritable=False)
            os.close(saved)
        os.close(r)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_dev_null_symlink_does_not_redirect_masks(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    cfg = make_config(
        [
            "sh",
            "-c",
            "echo pwned > /proc/timer_list 2>/dev/null; echo null=$(stat -c '%F %t:%T' /dev/null); echo timers=$(wc -c < /proc/timer_list)",
        ]
    )
    # Without a /dev tmpfs, the image's /dev is used as is: plant the symlink there.
    cfg["mounts"] = [mnt for mnt in cfg["mounts"] if not mnt["destination"].startswith("/dev")]
    code, out = run_container(rt, tmp_path, busybox_rootfs, cfg, copy_rootfs=True)
    assert code == 0, out
    rootfs = tmp_path / "bundle" / "rootfs"
    # Second run with the attack in place (the first made a real /dev/null).
    (rootfs / "dev/null").unlink()
    (rootfs / "dev/null").symlink_to("/proc/sys/kernel/core_pattern")
    from support.rt_bundle import make_bundle as mk

    mk(tmp_path, rootfs, cfg, copy_rootfs=False)
    _code, out = run_container(rt, tmp_path, rootfs, cfg)
    got = kv(out)
    assert got["null"] == "character special file 1:3"
    assert got["timers"] == "0"
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern


def test_masked_path_refuses_a_fake_dev_null(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """If the null device cannot be trusted, masking fails instead of binding
    whatever the rootfs planted."""
    from portique.linux.kernel import LinuxKernel
    from portique.runtime.rootfs import open_null_device

    root = tmp_path / "fakeroot"
    (root / "dev").mkdir(parents=True)
    (root / "dev/null").symlink_to("/proc/sys/kernel/core_pattern")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="not the null device"):
            open_null_device(fd, LinuxKernel())
        (root / "dev/null").unlink()
        (root / "dev/null").write_text("regular file")
        with pytest.raises(OSError, match="not the null device"):
            open_null_device(fd, LinuxKernel())
    finally:
        os.close(fd)


def test_mount_target_symlink_stays_inside_rootfs(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rootfs = bundle / "rootfs"
    import shutil

    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    # An absolute symlink to a host path, and one climbing out with "..".
    (rootfs / "escape").symlink_to(str(host_dir))
    (rootfs / "climb").symlink_to("../../../../../../../../" + str(host_dir).lstrip("/"))
    cfg = make_config(
        ["sh", "-c", "echo hi > /escape/made/inside; echo hi > /climb/made2/inside; echo ok"]
    )
    cfg["mounts"] += [
        {"destination": "/escape/made", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/climb/made2", "type": "tmpfs", "source": "tmpfs"},
    ]
    code, out = run_container(rt, tmp_path, rootfs, cfg)
    assert code == 0, out
    assert list(host_dir.iterdir()) == []  # nothing created or mounted on the host
    inside = rootfs / str(host_dir).lstrip("/")
    assert (inside / "made").is_dir()
    assert (inside / "made2").is_dir()
