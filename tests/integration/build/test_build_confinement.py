"""A Dockerfile RUN step is confined exactly like a default `portique run` container.

The attack (issue 9, item 2): a RUN step ran with no seccomp filter, read a
secret from the host root user's kernel keyring with keyctl, created a user
namespace with full capabilities and mounted inside it. Here a static probe
(tests/support/confprobe.c) makes those calls from a RUN step and from
`portique run` of the same image; both must be denied, and everything the
confinement is made of (seccomp mode, capability sets, no_new_privs, masked
and read-only paths, the /proc, /sys and /dev mounts, device nodes and the
device cgroup) must read the same in both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.confprobe import build_confprobe

Portique = Callable[..., subprocess.CompletedProcess[str]]

BEGIN, END = "==probe-begin==", "==probe-end=="

# What the probe script prints: one fact per line, nothing that differs from
# one container to the next (mount ids, cgroup paths, host names).
PROBE_SH = r"""#!/bin/sh
key=$1
echo "==probe-""begin=="
grep -E '^(Seccomp|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status
/confprobe syscalls
/confprobe readkey "$key"
# mountpoint, root inside its filesystem, per-mount options, type, super options
awk '{ for (i = 7; $i != "-"; i++) ; m = $5
       if (m ~ /^\/(proc|sys|dev)(\/|$)/) print "mount", m, $4, $6, $(i+1), $(i+3) }' \
    /proc/self/mountinfo | sort
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/scsi /proc/acpi \
         /sys/firmware /sys/devices/virtual/powercap /proc/sys /proc/sysrq-trigger; do
    echo "read $p $(head -c 64 $p 2>&1 | wc -c) $(ls $p 2>/dev/null | wc -l)"
done
{ echo 1 > /proc/sysrq-trigger; } 2>/dev/null && echo "write sysrq ok" || echo "write sysrq denied"
{ echo x > /proc/sys/kernel/hostname; } 2>/dev/null && echo "write sysctl ok" \
    || echo "write sysctl denied"
for d in /dev/*; do [ -c "$d" ] || [ -b "$d" ] && stat -c "dev %n %F %t:%T %a" "$d"; done
cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | sed 's/^/devcg /'
for spec in "tun c 10 200" "mem c 1 1" "loop b 7 0" "kmsg c 1 11"; do
    set -- $spec
    mknod "/tmp/$1" "$2" "$3" "$4" 2>/dev/null || { echo "mknod $1 denied"; continue; }
    if (exec 3<"/tmp/$1") 2>/dev/null; then echo "open $1 ok"; else echo "open $1 denied"; fi
    rm -f "/tmp/$1"
done
echo "tty $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1 | cut -d: -f1)"
echo "==probe-""end=="
"""


@pytest.fixture(scope="module")
def confprobe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_confprobe(tmp_path_factory.mktemp("confprobe"))


@pytest.fixture(scope="module")
def probe_image(
    engine: dict[str, str], confprobe: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    ctx = tmp_path_factory.mktemp("probe-ctx")
    shutil.copy2(confprobe, ctx / "confprobe")
    (ctx / "probe.sh").write_text(PROBE_SH)
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY confprobe /confprobe\nCOPY probe.sh /probe.sh\n"
    )
    subprocess.run(
        [sys.executable, "-m", "portique", "build", "-q", "-t", "confprobe:1", str(ctx)],
        env=engine,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return "confprobe:1"


@pytest.fixture
def host_key(confprobe: Path) -> Iterator[tuple[str, str]]:
    """A secret in the host root user's keyring (uid 0's @u), removed afterwards."""
    probe = confprobe
    desc = f"portique-test-{os.getpid()}-{os.urandom(4).hex()}"
    secret = os.urandom(8).hex()
    subprocess.run([str(probe), "addkey", desc, secret], check=True, capture_output=True)
    try:
        yield desc, secret
    finally:
        subprocess.run([str(probe), "delkey", desc], check=False, capture_output=True)


def _between(text: str) -> list[str]:
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END, start)].strip().splitlines()


def _facts(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        if ":" in line and line.split(":")[0] in (
            "Seccomp",
            "NoNewPrivs",
            "CapInh",
            "CapPrm",
            "CapEff",
            "CapBnd",
            "CapAmb",
        ):
            key, _, val = line.partition(":")
            out[key] = val.strip()
        elif "=" in line and " " not in line.split("=")[0]:
            key, _, val = line.partition("=")
            out[key] = val
    return out


def _run_facts(portique: Portique, image: str, desc: str) -> list[str]:
    out = portique("run", "--rm", "--network", "none", image, "/bin/sh", "/probe.sh", desc).stdout
    return _between(out)


def _build_facts(portique: Portique, image: str, desc: str, tmp: Path) -> list[str]:
    ctx = tmp / "step-ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nRUN /bin/sh /probe.sh {desc}\n")
    out = portique("build", "--no-cache", str(ctx)).stdout
    return _between(out)


def test_run_step_is_confined_like_a_default_container(
    portique: Portique, probe_image: str, host_key: tuple[str, str], tmp_path: Path
) -> None:
    desc, secret = host_key
    ran = _run_facts(portique, probe_image, desc)
    built = _build_facts(portique, probe_image, desc, tmp_path)
    run_facts, build_facts = _facts(ran), _facts(built)

    # The attack, step by step: each is denied in the RUN step.
    assert build_facts["Seccomp"] == "2", built
    assert secret not in "\n".join(built)
    assert build_facts["readkey"] == "EPERM"
    assert build_facts["keyctl"] == "EPERM"
    assert build_facts["add_key"] == "EPERM"
    assert build_facts["userns"] == "EPERM"
    assert "userns_mount" not in build_facts
    assert build_facts["mount_tmpfs"] == "EPERM"
    assert build_facts["CapEff"] == run_facts["CapEff"]
    assert build_facts["NoNewPrivs"] == run_facts["NoNewPrivs"] == "0"  # Docker's default

    # And the whole picture is the default container's, line for line:
    # masked and read-only paths, mounts, devices, device cgroup, stdio.
    assert built == ran
    mounts = [line for line in built if line.startswith("mount ")]
    assert any(re.match(r"mount /proc/keys /null \S+ tmpfs", m) for m in mounts), mounts
    assert any(re.match(r"mount /proc/sys /sys ro,", m) for m in mounts), mounts
    assert "read /proc/keys 0 1" in built
    assert "write sysrq denied" in built
    assert "write sysctl denied" in built
    assert "open mem denied" in built
    assert "open loop denied" in built
    assert "tty /dev/null pipe" in built
