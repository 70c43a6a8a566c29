"""What `exec` hands its process, and what it cleans up when the caller fails."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from portique.oci.runtime import parse_process
from portique.runtime import Runtime
from support.rt_bundle import make_bundle, make_config
from support.rt_run import Outputs, kv, new_id


def test_exec_gets_default_signal_dispositions_and_an_empty_mask(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """The interpreter ignores SIGPIPE and SIGXFSZ, a caller started in the
    background by a shell ignores SIGINT and SIGQUIT, and any caller may
    block signals: ignored dispositions and the mask survive execve, and the
    exec'd program must get neither (the init's test is in test_rt_spec_strict)."""
    out = Outputs(tmp_path)
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    cid = new_id()
    rt.run(cid, bundle, detach=True, stdio=out.stdio)
    proc = parse_process({"args": ["grep", "^Sig[IB]", "/proc/self/status"], "cwd": "/"})
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_quit = signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGTERM})
    try:
        code = rt.exec(cid, proc, stdio=out.stdio)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGQUIT, old_quit)
        signal.signal(signal.SIGINT, old_int)
        rt.delete(cid, force=True)
        out.close()
    assert code == 0, out.text()
    got = {k.rstrip(":"): v for k, v in (line.split() for line in out.text().splitlines())}
    assert got == {"SigBlk": "0000000000000000", "SigIgn": "0000000000000000"}


# Runs as PID 1 of a pid namespace of its own, where nothing else allocates
# pids: the pid the exec helper had can be handed out again on purpose.
DRIVER = r"""
import os, sys
from pathlib import Path
from portique.linux.selfexe import ensure_protected
ensure_protected()
from portique.oci.runtime import parse_process
from portique.runtime import Runtime

state, bundle = sys.argv[1], sys.argv[2]
rt = Runtime(Path(state))
null = os.open("/dev/null", os.O_RDWR)
rt.run("victim", Path(bundle), detach=True, stdio=(null, null, null))
seen = {}

def on_pid(pid):
    # The helper forked the process: it had the pid just before, and the
    # runtime has reaped it by now. A new process takes that pid.
    helper = pid - 1
    seen["process"] = pid
    print("helper-reaped=%s" % (not os.path.exists(f"/proc/{helper}")), flush=True)
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(helper - 1))
    sentinel = os.fork()
    if sentinel == 0:
        os.execv("/bin/sleep", ["sleep", "60"])
    seen["sentinel"] = sentinel
    print("sentinel-took-it=%s" % (sentinel == helper), flush=True)
    raise RuntimeError("the caller failed")

try:
    rt.exec("victim", parse_process({"args": ["sleep", "60"], "cwd": "/"}),
            stdio=(null, null, null), on_pid=on_pid)
except RuntimeError as e:
    print(f"raised={e}", flush=True)
try:
    done, _ = os.waitpid(seen["sentinel"], os.WNOHANG)
    print("sentinel=%s" % ("alive" if done == 0 else "dead"), flush=True)
except ChildProcessError:
    print("sentinel=reaped-by-the-runtime", flush=True)
# The exec'd process was killed (and reaped) with the failure, before exec
# returned: not left running with nobody to wait for it.
def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False

print("process=%s" % ("running" if running(seen["process"]) else "gone"), flush=True)
rt.delete("victim", force=True)
"""


def test_exec_cleanup_never_signals_a_pid_it_has_reaped(
    tmp_path: Path, busybox_rootfs: Path
) -> None:
    """If the caller's on_pid fails, the clean-up once sent SIGKILL to the
    exec helper's pid after reaping that helper: whatever process had taken
    the pid since was killed (and reaped) instead, and the exec'd process
    was left running with nobody to wait for it. Here a process takes the
    pid on purpose (ns_last_pid, in a private pid namespace): it must live,
    and the exec'd process must be gone."""
    bundle = make_bundle(tmp_path, busybox_rootfs, make_config(["sleep", "60"]))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            sys.executable,
            str(driver),
            str(tmp_path / "state"),
            str(bundle),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    got = kv(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert got["helper-reaped"] == "True", proc.stdout
    assert got["sentinel-took-it"] == "True", proc.stdout
    assert got["raised"] == "the caller failed"
    assert got["sentinel"] == "alive"
    assert got["process"] == "gone"
