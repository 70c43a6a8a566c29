"""Issue 13 item 10, the parts still missing: --cpus above the host's CPUs, a
volume on /etc keeping the engine's /etc files, system prune and networks."""

from __future__ import annotations

import os

from support.engine_cli import Portique


def test_cpus_above_the_host_count_is_refused(pq: Portique) -> None:
    n = len(os.sched_getaffinity(0))
    p = pq("run", "--rm", "--cpus", str(n + 1), "busybox", "true")
    assert p.returncode == 125
    assert p.stderr.strip() == (
        f"portique: range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
    )
    pq.ok("run", "--rm", "--network", "none", "--cpus", str(n), "busybox", "true")


def test_volume_on_etc_keeps_hosts_hostname_resolv_conf(pq: Portique) -> None:
    out = pq.ok("run", "--rm", "--network", "none", "-h", "etcbox", "-v", "etc-vol:/etc",
                "busybox", "sh", "-c",
                "cat /etc/hostname; grep -c etcbox /etc/hosts; test -s /etc/resolv.conf && echo ok;"
                " ls /etc/passwd")  # fmt: skip
    assert out == "etcbox\n1\nok\n/etc/passwd\n"  # and the image's /etc was copied in
    pq.ok("volume", "rm", "etc-vol")


def test_system_prune_removes_unused_networks(pq: Portique) -> None:
    pq.ok("network", "create", "prune-unused")
    pq.ok("network", "create", "prune-used")
    cid = pq.ok("run", "-d", "--network", "prune-used", "busybox", "sleep", "300").strip()
    out = pq.ok("system", "prune", "-f")
    section = out.partition("Deleted Networks:\n")[2].partition("\n\n")[0].split("\n")
    assert "prune-unused" in section
    assert "prune-used" not in section
    names = pq.ok("network", "ls", "--format", "{{.Name}}").split()
    assert "prune-unused" not in names
    assert "prune-used" in names
    assert "bridge" in names
    pq.ok("rm", "-f", cid)
    pq.ok("network", "rm", "prune-used")
