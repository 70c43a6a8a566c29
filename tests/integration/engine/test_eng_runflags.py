"""Issue 13 items 5 and 7: the run/create flags Docker users reach for, each
checked in the kernel's own view from inside the container (/proc, sysfs,
mountinfo) and relative bind sources (docker CLI 23+)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.engine_cli import Portique


def test_relative_bind_sources_resolve_against_cwd(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("in data\n")
    (tmp_path / "top").write_text("at top\n")
    out = pq.ok(
        "run", "--rm", "--network", "none",
        "-v", ".:/src",
        "-v", "./data:/data:ro",
        "--mount", "type=bind,src=./data,dst=/m",
        "busybox", "sh", "-c", "cat /src/top /data/f /m/f",
        cwd=tmp_path,
    )  # fmt: skip
    assert out == "at top\nin data\nin data\n"
    row = pq.ok(
        "create", "-v", "./data:/data", "--mount", "type=bind,source=.,target=/t", "busybox",
        cwd=tmp_path,
    ).strip()  # fmt: skip
    binds = pq.inspect(row, "{{json .HostConfig.Binds}}")
    assert binds == f'["{tmp_path}/data:/data"]'
    assert pq.inspect(row, "{{(index .HostConfig.Mounts 0).Source}}") == str(tmp_path)
    pq.ok("rm", row)
    # A bare word is still a volume name, as with Docker.
    p = pq("run", "--rm", "-v", "data/x:/x", "busybox", "true", cwd=tmp_path)
    assert p.returncode == 125


def _run(pq: Portique, *args: str) -> str:
    return pq.ok("run", "--rm", "--network", "none", *args)


def _status(text: str, key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key))


def test_group_add_reaches_the_process(pq: Portique) -> None:
    out = _run(pq, "--group-add", "4242", "--group-add", "daemon", "busybox", "cat",
               "/proc/self/status")  # fmt: skip
    groups = _status(out, "Groups").split()
    assert "4242" in groups
    assert "1" in groups  # busybox's /etc/group: daemon is gid 1
    p = pq("run", "--rm", "--group-add", "no-such-group", "busybox", "true")
    assert p.returncode == 125
    assert "no-such-group" in p.stderr


def test_shm_size_sysctl_domainname_oom_score_adj(pq: Portique) -> None:
    out = _run(
        pq, "--shm-size", "32m", "--sysctl", "kernel.shmmax=123456", "--sysctl",
        "net.ipv4.ip_forward=1", "--domainname", "example.org", "--oom-score-adj", "321",
        "busybox", "sh", "-c",
        "grep ' /dev/shm ' /proc/self/mountinfo; cat /proc/sys/kernel/shmmax"
        " /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname /proc/self/oom_score_adj",
    )  # fmt: skip
    shm, shmmax, fwd, domain, oom = out.splitlines()
    assert "size=32768k" in shm.split(" - ")[1]
    assert (shmmax, fwd, domain, oom) == ("123456", "1", "example.org", "321")
    # A sysctl outside the container's namespaces is refused, as Docker does.
    for bad in (["--sysctl", "vm.swappiness=1"], ["--network", "host", "--sysctl", "net.x=1"],
                ["--oom-score-adj", "2000"], ["--shm-size", "0"]):  # fmt: skip
        p = pq("run", "--rm", *bad, "busybox", "true")
        assert p.returncode == 125, bad
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.vm
def test_device_is_created_and_allowed(pq: Portique) -> None:
    # /dev/cpu_dma_latency (a misc char device, here and in the VM) is in no
    # default rule: only --device lets it in, and the device cgroup (v1 file,
    # v2 eBPF program) grants what the third field says ("r").
    st = os.stat("/dev/cpu_dma_latency")
    script = (
        "ls -l /dev/xlat; head -c 4 /dev/xlat | wc -c; (: >> /dev/xlat) 2>/dev/null || echo denied"
    )
    out = _run(pq, "--device", "/dev/cpu_dma_latency:/dev/xlat:r", "busybox", "sh", "-c", script)
    ls, read, write = out.splitlines()
    assert ls.startswith("c")
    assert f"{os.major(st.st_rdev)}, {os.minor(st.st_rdev):3d}" in ls
    assert (read.strip(), write) == ("4", "denied")
    p = pq("run", "--rm", "--network", "none", "busybox", "ls", "/dev/xlat")
    assert p.returncode != 0
    p = pq("run", "--rm", "--device", "/dev/no-such-device", "busybox", "true")
    assert p.returncode == 125
    assert "/dev/no-such-device" in p.stderr


def test_label_file_expose_cidfile_ps_expose(pq: Portique, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# comment\nteam=core\n\ntier=web\n")
    cidfile = tmp_path / "cid"
    out = pq.ok(
        "create", "--label-file", str(labels), "-l", "tier=db", "--expose", "80",
        "--expose", "7000-7001/udp", "--cidfile", str(cidfile), "busybox",
    )  # fmt: skip
    cid = out.strip()
    assert cidfile.read_text() == cid
    assert pq.inspect(cid, "{{.Config.Labels.team}} {{.Config.Labels.tier}}") == "core db"
    # Docker's defaults, as its inspect shows them.
    assert pq.inspect(cid, "{{.HostConfig.ShmSize}} {{.HostConfig.IpcMode}}") == "67108864 private"
    ports = pq.inspect(cid, "{{json .Config.ExposedPorts}}")
    assert ports == '{"7000/udp":{},"7001/udp":{},"80/tcp":{}}'
    run_cid = tmp_path / "run-cid"
    rid = pq.ok("run", "-d", "--network", "none", "--cidfile", str(run_cid), "busybox", "true")
    assert run_cid.read_text() == rid.strip()
    pq.ok("rm", "-f", rid.strip())
    p = pq("create", "--cidfile", str(cidfile), "busybox")
    assert p.returncode == 125
    assert "container ID file found" in p.stderr
    assert pq.ok("ps", "-aq", "--filter", "expose=7001/udp").split() == [cid[:12]]
    pq.ok("rm", cid)


def test_refused_flags_say_why(pq: Portique) -> None:
    for flags, words in (
        (["--gpus", "all"], "GPU"),
        (["--storage-opt", "size=1G"], "--storage-opt"),
        (["--log-driver", "syslog"], "syslog"),
        (["--runtime", "no-such-runtime"], "runtime"),
        (["--pid", "sideways"], "--pid"),
    ):
        p = pq("run", "--rm", *flags, "busybox", "true")
        assert p.returncode == 125, flags
        assert words in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_namespace_modes(pq: Portique) -> None:
    import os
    import socket

    def ns(kind: str) -> str:
        return os.readlink(f"/proc/self/ns/{kind}")

    script = "for n in pid uts ipc cgroup; do readlink /proc/self/ns/$n; done"
    priv = _run(pq, "busybox", "sh", "-c", script).split()
    assert priv[0] != ns("pid")
    assert priv[1] != ns("uts")
    assert priv[2] != ns("ipc")
    shared = _run(
        pq, "--pid", "host", "--uts", "host", "--ipc", "host", "--cgroupns", "host",
        "--userns", "host", "busybox", "sh", "-c", script + "; hostname",
    ).split()  # fmt: skip
    assert shared == [ns("pid"), ns("uts"), ns("ipc"), ns("cgroup"), socket.gethostname()]
    p = pq("run", "--rm", "--uts", "host", "-h", "x", "busybox", "true")
    assert p.returncode == 125
    # container:X shares X's pid namespace; its ipc namespace when X is shareable.
    donor = pq.ok("run", "-d", "--network", "none", "--ipc", "shareable", "busybox",
                  "sh", "-c", "echo hi > /dev/shm/mark; exec sleep 60").strip()  # fmt: skip
    pid = pq.inspect(donor, "{{.State.Pid}}")
    out = _run(
        pq, "--pid", f"container:{donor}", "--ipc", f"container:{donor}", "busybox", "sh", "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; cat /dev/shm/mark",
    ).split()  # fmt: skip
    assert out == [os.readlink(f"/proc/{pid}/ns/pid"), os.readlink(f"/proc/{pid}/ns/ipc"), "hi"]
    private = pq.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    p = pq("run", "--rm", "--ipc", f"container:{private}", "busybox", "true")
    assert p.returncode == 125
    assert "shareable" in p.stderr
    pq.ok("rm", "-f", donor, private)
    # The donor's /dev/shm (a tmpfs in its directory on the host) went with it.
    with open("/proc/self/mountinfo") as f:
        assert not [ln for ln in f if donor in ln]


def test_volumes_from_shares_volumes_and_binds(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "h").write_text("from host\n")
    donor = pq.ok("create", "-v", "/data", "-v", "vf-named:/named", "-v", f"{tmp_path}:/bind",
                  "--tmpfs", "/scratch", "busybox").strip()  # fmt: skip
    anon = pq.inspect(
        donor, '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}'
    )
    out = _run(pq, "--volumes-from", donor, "busybox", "sh", "-c",
               "echo x > /data/f; echo y > /named/f; cat /bind/h;"
               " grep -c ' /scratch ' /proc/self/mountinfo || true")  # fmt: skip
    assert out == "from host\n0\n"  # the tmpfs is not shared
    # The --rm container above did not take the donor's anonymous volume with it.
    assert anon in pq.ok("volume", "ls", "-q").split()
    script = "cat /data/f /named/f; (echo z > /data/f) 2>/dev/null || echo read-only"
    out = _run(pq, "--volumes-from", f"{donor}:ro", "busybox", "sh", "-c", script)
    assert out == "x\ny\nread-only\n"
    p = pq("run", "--rm", "--volumes-from", "no-such-container", "busybox", "true")
    assert p.returncode != 0
    pq.ok("rm", "-v", donor)
    pq.ok("volume", "rm", "vf-named")


def test_quiet_run_prints_no_pull_output(pq: Portique, tmp_path: Path) -> None:
    from support.registry import start_registry

    with start_registry(tmp_path, mode="plain") as reg:
        pq.ok("tag", "busybox", f"{reg.host}/quiet/bb:1")
        pq.ok("push", f"{reg.host}/quiet/bb:1")
        pq.ok("rmi", f"{reg.host}/quiet/bb:1")
        p = pq("run", "--rm", "--network", "none", f"{reg.host}/quiet/bb:1", "echo", "hi")
        assert p.returncode == 0
        assert "Unable to find image" in p.stderr
        pq.ok("rmi", f"{reg.host}/quiet/bb:1")
        p = pq("run", "-q", "--rm", "--network", "none", f"{reg.host}/quiet/bb:1", "echo", "hi")
        assert (p.returncode, p.stdout, p.stderr) == (0, "hi\n", "")
        pq.ok("rmi", f"{reg.host}/quiet/bb:1")


def test_device_directory_brings_its_nodes(pq: Portique) -> None:
    # Docker's --device DIR: every device node under it, at the same place under
    # the container path (here /dev/net/tun, char 10:200).
    out = _run(pq, "--device", "/dev/net:/dev/xnet", "busybox", "ls", "-l", "/dev/xnet")
    (line,) = [ln for ln in out.splitlines() if ln.endswith(" tun")]
    assert line.startswith("c")
    assert "10, 200" in line
    p = pq("run", "--rm", "--device", "/etc:/x", "busybox", "true")
    assert p.returncode == 125
    assert "no device node" in p.stderr
