"""`commit` and `diff` (issue 13, item 4), as Docker prints and makes them."""

from __future__ import annotations

import json

from support.engine_cli import Portique

SCRIPT = (
    "echo hi > /tmp/new; rm /etc/group; mkdir -p /a/b; echo x > /a/b/c; "
    "echo y >> /etc/passwd; touch /ready; sleep 1000"
)


def _started(pq: Portique, *args: str) -> str:
    cid = pq.ok("run", "-d", *args, "busybox", "sh", "-c", SCRIPT).strip()
    import time

    deadline = time.monotonic() + 30
    while pq("exec", cid, "test", "-e", "/ready").returncode != 0:
        assert time.monotonic() < deadline, "the container did not make its changes"
        time.sleep(0.05)
    return cid


def test_diff_lists_a_c_d_as_docker(pq: Portique) -> None:
    cid = _started(pq)
    try:
        lines = pq.ok("diff", cid).splitlines()
        # The runtime's mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf,
        # /proc, /dev, /sys) are not the container's changes.
        assert lines == [
            "A /a",
            "A /a/b",
            "A /a/b/c",
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "A /ready",
            "C /tmp",
            "A /tmp/new",
        ]
        assert pq.ok("container", "diff", cid).splitlines() == lines
        # A volume's mount point is the container's (Docker lists it too).
        vol = pq.ok("run", "-d", "-v", "/data", "busybox", "sleep", "1000").strip()
        try:
            assert pq.ok("diff", vol) == "A /data\n"
        finally:
            pq.ok("rm", "-f", vol)
    finally:
        pq.ok("rm", "-f", cid)
    missing = pq("diff", "nosuch")
    assert (missing.returncode, missing.stderr) == (1, "Error: No such container: nosuch\n")


def test_diff_of_a_created_container_is_empty(pq: Portique) -> None:
    cid = pq.ok("create", "busybox", "true").strip()
    try:
        assert pq.ok("diff", cid) == ""
    finally:
        pq.ok("rm", cid)


def test_commit_with_changes_message_author(pq: Portique) -> None:
    cid = _started(pq, "-e", "FROM_RUN=1")
    try:
        out = pq.ok("commit", "-m", "my message", "-a", "Jane <j@x>", "-c", 'CMD ["cat", "/a/b/c"]',
                    "-c", "ENV ADDED=yes", cid, "committed:v1")  # fmt: skip
        image_id = out.strip()
        assert image_id.startswith("sha256:")
        assert len(image_id) == 71
        # The container kept running (paused only while its changes were read).
        assert pq.inspect(cid, "{{.State.Status}}") == "running"
    finally:
        pq.ok("rm", "-f", cid)
    assert pq.ok("run", "--rm", "committed:v1") == "x\n"
    got = json.loads(pq.ok("image", "inspect", "committed:v1"))[0]
    assert got["Id"] == image_id
    assert (got["Comment"], got["Author"]) == ("my message", "Jane <j@x>")
    assert got["Config"]["Cmd"] == ["cat", "/a/b/c"]
    assert "ADDED=yes" in got["Config"]["Env"]
    assert "FROM_RUN=1" in got["Config"]["Env"]
    base = json.loads(pq.ok("image", "inspect", "busybox"))[0]
    assert got["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    # The new layer holds the changes and no mount point of the runtime's.
    listing = pq.ok("run", "--rm", "committed:v1", "sh", "-c", "ls /etc; cat /tmp/new")
    assert listing.split() == ["hostname", "hosts", "passwd", "resolv.conf", "hi"]
    hist = pq.ok("history", "--format", "{{.Comment}}|{{.CreatedBy}}", "committed:v1")
    assert hist.splitlines()[0].startswith("my message|sh -c echo hi")


def test_commit_without_changes_adds_no_layer_and_no_pause(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "busybox", "sleep", "1000").strip()
    try:
        image_id = pq.ok("commit", "--pause=false", cid).strip()
        assert pq.inspect(cid, "{{.State.Status}}") == "running"
    finally:
        pq.ok("rm", "-f", cid)
    got = json.loads(pq.ok("image", "inspect", image_id))[0]
    base = json.loads(pq.ok("image", "inspect", "busybox"))[0]
    assert got["RootFS"]["Layers"] == base["RootFS"]["Layers"]
    assert got["RepoTags"] == []
    pq.ok("rmi", image_id)


def test_commit_of_a_stopped_container_and_bad_reference(pq: Portique) -> None:
    pq.ok("run", "busybox", "sh", "-c", "echo stopped > /s")
    cid = pq.ok("ps", "-lq").strip()
    try:
        pq.ok("commit", cid, "from-stopped")
        assert pq.ok("run", "--rm", "from-stopped", "cat", "/s") == "stopped\n"
        bad = pq("commit", cid, "Bad Name")
        assert bad.returncode == 125, bad.stderr
        assert bad.stderr.count("\n") == 1, bad.stderr
    finally:
        pq.ok("rm", cid)
    missing = pq("commit", "nosuch", "x")
    assert (missing.returncode, missing.stderr) == (1, "Error: No such container: nosuch\n")
