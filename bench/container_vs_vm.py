#!/usr/bin/env python3
"""A busybox container against the QEMU VM of ../shared/vm, on this machine.

Usage (as root, from the repository):
    .venv/bin/python bench/container_vs_vm.py [--runs 3] [--vm-runs 3] [--json FILE]

Measures, for the claims containers are taught with:

1. time to a first command: `portique run --rm --network none busybox echo
   ready` against `run-in-vm.sh 'echo ready'`, from the start of the command
   to the moment "ready" is read on its stdout (the VM's output is polled
   every 0.2 s by run-in-vm.sh: its times carry up to 0.2 s of that);
2. memory while idle: the PSS of the container's processes (its cgroup),
   and of portique's monitor beside it, against the PSS of the QEMU process
   with the guest idle (after "ready" and 3 s of settling);
3. bytes on disk: the image (its unpacked size, as `portique images` counts
   it, and its stored blobs) against the VM's kernel + initramfs;
4. the same two workloads in the host, the container and the VM, each timed
   inside its environment with /proc/uptime (10 ms steps) by the same
   busybox-static binary: a syscall-heavy one (`dd bs=1`, two system calls
   per byte) and a CPU-bound one (an awk loop); reported as ratios of
   medians (--runs) to the host's. The machine is shared, so the host's
   baseline is measured at the same moments: host and container runs
   alternate, and the VM's runs sit between host runs just before and just
   after its boot.

The VM is Debian's kernel under QEMU with TCG (binary translation: this
host's kernel exposes no usable KVM), so every guest instruction is
emulated. The numbers are what this machine measures; they are not what a
KVM guest would show.

Uses a private engine root (a temporary directory); the VM's pieces are
built by ../shared/vm/build-vm.sh on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
PORTIQUE = str(Path(sys.executable).with_name("portique"))
# ../shared/vm from the main checkout, ../../shared/vm from a worktree under it.
VM_SCRIPT = Path(
    os.environ.get("PORTIQUE_VM_SCRIPT")
    or next(
        (
            p
            for p in (
                REPO.parent / "shared/vm/run-in-vm.sh",
                REPO.parent.parent / "shared/vm/run-in-vm.sh",
            )
            if p.exists()
        ),
        REPO.parent / "shared/vm/run-in-vm.sh",
    )
)
VM_DIR = Path(os.environ.get("PORTIQUE_VM_DIR", "/var/cache/portique-vm"))
BUSYBOX = "/bin/busybox"

SYSCALL_WORK = "dd if=/dev/zero of=/dev/null bs=1 count=1000000 2>/dev/null"
CPU_WORK = "awk 'BEGIN{s=0;for(i=0;i<2000000;i++)s+=i;print s}' >/dev/null"


def timed(work: str) -> str:
    """A busybox sh snippet printing `elapsed SECONDS` for `work`, by /proc/uptime."""
    return (
        "t0=$(cut -d' ' -f1 /proc/uptime); "
        f"{work}; "
        "t1=$(cut -d' ' -f1 /proc/uptime); "
        'echo "elapsed $t0 $t1"'
    )


def workloads_script(runs: int) -> str:
    """Every run of both workloads, one `NAME elapsed T0 T1` line each."""
    parts = []
    for _ in range(runs):
        for name, work in (("syscall", SYSCALL_WORK), ("cpu", CPU_WORK)):
            parts.append(f"printf '{name} '; {timed(work)}")
    return "; ".join(parts)


def parse_elapsed(output: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"syscall": [], "cpu": []}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[1] == "elapsed" and fields[0] in out:
            out[fields[0]].append(float(fields[3]) - float(fields[2]))
    return out


def busybox_tar(dest: Path) -> Path:
    from support.rootfs import make_busybox_rootfs

    rootfs = make_busybox_rootfs(dest / "rootfs")
    tar_path = dest / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tar_path


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc/*/stat parent links."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def until_line(
    cmd: list[str], marker: str, env: dict[str, str] | None = None, timeout: float = 600
) -> tuple[float, subprocess.Popen[bytes]]:
    """Start `cmd`; seconds until a stdout line equal to `marker` is read."""
    start = time.monotonic()
    err = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None
    buf = b""
    deadline = start + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        if marker.encode() + b"\n" in buf:
            return time.monotonic() - start, proc
    proc.kill()
    proc.wait()
    err.seek(0)
    tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    raise RuntimeError(f"{' '.join(cmd)}: no {marker!r} on stdout: {' / '.join(tail)}")


def finish(proc: subprocess.Popen[bytes], timeout: float = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out.decode(errors="replace")


@contextlib.contextmanager
def engine() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="pq-cvm-") as tmp:
        run_root = f"/run/pq-cvm-{os.getpid()}"
        env = dict(os.environ, PORTIQUE_ROOT=f"{tmp}/root", PORTIQUE_RUNROOT=run_root)
        tar = busybox_tar(Path(tmp))
        subprocess.run(
            [PORTIQUE, "import", "--change", 'CMD ["/bin/sh"]', str(tar), "busybox:latest"],
            env=env,
            check=True,
            capture_output=True,
        )
        try:
            yield env
        finally:
            ids = subprocess.run(
                [PORTIQUE, "ps", "-aq"], env=env, capture_output=True, text=True, check=False
            ).stdout.split()
            if ids:
                subprocess.run([PORTIQUE, "rm", "-f", *ids], env=env, capture_output=True)
            subprocess.run(["rm", "-rf", run_root], check=False)


# ---------------------------------------------------------------- container


def container_numbers(env: dict[str, str], runs: int) -> dict[str, Any]:
    first = []
    for _ in range(runs):
        t, proc = until_line(
            [PORTIQUE, "run", "--rm", "--network", "none", "busybox", "echo", "ready"], "ready", env
        )
        finish(proc)
        first.append(t)
    cid = subprocess.run(
        [PORTIQUE, "run", "-d", "--network", "none", "busybox", "sleep", "600"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pid = int(
        subprocess.run(
            [PORTIQUE, "inspect", "-f", "{{.State.Pid}}", cid],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    time.sleep(3)  # settle, as for the VM
    members = cgroup_members(pid)
    container_pss = sum(pss_kib(p) for p in members)
    monitor = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    monitor_pss = pss_kib(monitor)
    # One run on the host, one in the container, in turn: both see the same
    # load (this machine is shared; a long series of one then the other
    # would compare two different moments).
    # A second container without a seccomp filter tells what the filter costs.
    bare = subprocess.run(
        [PORTIQUE, "run", "-d", "--network", "none", "--security-opt", "seccomp=unconfined",
         "busybox", "sleep", "600"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip

    def in_container(container: str) -> str:
        return subprocess.run(
            [PORTIQUE, "exec", container, "sh", "-c", workloads_script(1)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        ).stdout

    out, host_out, bare_out = "", "", ""
    for _ in range(runs):
        host_out += host_run(1)
        out += in_container(cid)
        bare_out += in_container(bare)
    image_size = int(
        subprocess.run(
            [PORTIQUE, "image", "inspect", "-f", "{{.Size}}", "busybox"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    blobs = Path(env["PORTIQUE_ROOT"]) / "blobs"
    blob_bytes = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file())
    subprocess.run([PORTIQUE, "rm", "-f", cid, bare], env=env, capture_output=True, check=False)
    return {
        "first_command_s": first,
        "idle_pss_kib": container_pss,
        "monitor_pss_kib": monitor_pss,
        "processes": len(members),
        "image_bytes": image_size,
        "blob_bytes": blob_bytes,
        "work": parse_elapsed(out),
        "host_work": parse_elapsed(host_out),
        "unconfined_work": parse_elapsed(bare_out),
    }


def cgroup_members(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrls == "pids" or (ctrls == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists()):
            base = Path("/sys/fs/cgroup") / ("pids" if ctrls else "") / path.lstrip("/")
            return [int(x) for x in (base / "cgroup.procs").read_text().split()]
    return [pid]


# ---------------------------------------------------------------- VM


def vm_numbers(runs: int, work_runs: int) -> dict[str, Any]:
    first = []
    for _ in range(runs):
        t, proc = until_line(["bash", str(VM_SCRIPT), "echo ready"], "ready")
        finish(proc)
        first.append(t)
    # Idle: the guest waits; QEMU is the one process that holds it.
    t, proc = until_line(["bash", str(VM_SCRIPT), "echo ready; sleep 8"], "ready")
    time.sleep(3)
    qemu = [p for p in descendants(proc.pid) if _comm(p).startswith("qemu-system")]
    idle = pss_kib(qemu[0]) if qemu else 0
    finish(proc)
    # The host's runs just before and just after the VM's are its baseline.
    script = f"{BUSYBOX} sh -c {shlex.quote(workloads_script(work_runs))}"
    host_out = host_run(work_runs)
    _, proc = until_line(["bash", str(VM_SCRIPT), f"echo ready; {script}"], "ready")
    out = finish(proc)
    host_out += host_run(work_runs)
    sizes = {p.name: p.stat().st_size for p in (VM_DIR / "vmlinux", VM_DIR / "initramfs.cpio.gz")}
    return {
        "first_command_s": first,
        "idle_pss_kib": idle,
        "guest_mem_mib": int(os.environ.get("VMLAB_MEM", "1024")),
        "kernel_bytes": sizes["vmlinux"],
        "initramfs_bytes": sizes["initramfs.cpio.gz"],
        "work": parse_elapsed(out),
        "host_work": parse_elapsed(host_out),
    }


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def host_run(runs: int) -> str:
    return subprocess.run(
        [BUSYBOX, "sh", "-c", workloads_script(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout


# ---------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": f"{int(mem) // 1024} MiB",
        "kernel": platform.release(),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(ctr: dict[str, Any], vm: dict[str, Any]) -> str:
    def ratio(kind: str, env: dict[str, Any]) -> str:
        mine, host = _med(env["work"][kind]), _med(env["host_work"][kind])
        text = f"{mine / host:.2f}x ({mine:.2f} s; host {host:.2f} s)"
        if "unconfined_work" in env:
            text += f"; {_med(env['unconfined_work'][kind]) / host:.2f}x without seccomp"
        return text

    cfirst, vfirst = ctr["first_command_s"], vm["first_command_s"]
    rows = [
        ("measure", "container (portique, busybox)", "VM (QEMU TCG, Debian kernel)"),
        (
            "time to a first command",
            f"{_med(cfirst) * 1000:.0f} ms",
            f"{_med(vfirst):.2f} s",
        ),
        (
            "memory while idle (PSS)",
            f"{_mib(float(ctr['idle_pss_kib']))} (+ monitor {_mib(float(ctr['monitor_pss_kib']))})",
            f"{_mib(float(vm['idle_pss_kib']))} (guest given {vm['guest_mem_mib']} MiB)",
        ),
        (
            "bytes on disk",
            f"{int(ctr['image_bytes']) / 1e6:.1f} MB image ({int(ctr['blob_bytes']) / 1e6:.1f} MB stored)",
            f"{(int(vm['kernel_bytes']) + int(vm['initramfs_bytes'])) / 1e6:.1f} MB kernel + initramfs",
        ),
        ("syscall-heavy workload, time vs the host", ratio("syscall", ctr), ratio("syscall", vm)),
        ("CPU-bound workload, time vs the host", ratio("cpu", ctr), ratio("cpu", vm)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per container measure and workload")
    ap.add_argument("--vm-runs", type=int, default=3, help="VM boots timed to a first command")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("container_vs_vm.py: run as root\n")
        return 1
    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    with engine() as env:
        ctr = container_numbers(env, args.runs)
    vm = vm_numbers(args.vm_runs, args.runs)
    print(table(ctr, vm))
    print("load average after: " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    print(
        "VM: QEMU with TCG (no KVM), Debian's kernel, guest root = the host's / over 9p; "
        f"workloads: `{SYSCALL_WORK}` and `{CPU_WORK}`, medians of {args.runs} runs."
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "container": ctr, "vm": vm}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
