"""The host guard of the integration suites (tests/support/host_guard.py):
what it reports and what it leaves alone, on a stand-in /dev, /etc and
mount table."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

from support import host_guard as hg

MOUNTINFO = """\
24 27 0:6 / /dev rw,relatime shared:2 - devtmpfs devtmpfs rw,size=1k
27 1 0:20 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 27 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
31 30 0:26 / /run/netns rw shared:6 - tmpfs tmpfs rw
40 27 0:42 / /tmp/pytest-of-root/pytest-1/engine0/root/containers/c1/rootfs rw - overlay overlay rw
"""


def _world(tmp_path: Path) -> tuple[Path, Path, Path]:
    dev, etc = tmp_path / "dev", tmp_path / "etc"
    (dev / "net").mkdir(parents=True)
    (dev / "pts").mkdir()
    etc.mkdir()
    for name in ("null", "zero", "net/tun"):
        (dev / name).write_text("")
    (dev / "fd").symlink_to("/proc/self/fd")
    for name in hg.ETC_FILES:
        (etc / name).write_text(f"{name}\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    return dev, etc, mountinfo


def _take(world: tuple[Path, Path, Path]) -> hg.Snapshot:
    dev, etc, mountinfo = world
    return hg.take(str(dev), str(etc), str(mountinfo))


def test_nothing_changed_nothing_reported(tmp_path: Path) -> None:
    world = _world(tmp_path)
    before = _take(world)
    (world[0] / "pts/7").write_text("")  # ptys come and go
    assert hg.compare(before, _take(world)) == []


def test_a_replaced_node_is_named(tmp_path: Path) -> None:
    world = _world(tmp_path)
    dev = world[0]
    before = _take(world)
    (dev / "null").unlink()
    (dev / "null").write_text("")  # same kind and mode, a new node: replaced
    (dev / "zero").chmod(0o600)
    (dev / "net/tun").unlink()
    (dev / "fd").unlink()
    (dev / "fd").symlink_to("/etc")
    (dev / "stray").write_text("")
    (dev / "mqueue").mkdir()
    (dev / "pts/0").write_text("")  # a new pty: not a change of the host's /dev
    problems = hg.compare(before, _take(world))
    assert len(problems) == 6, problems
    assert any(p.startswith("/dev/mqueue appeared: directory mode") for p in problems)
    assert any(p.startswith("/dev/null changed: regular file") and "ctime" in p for p in problems)
    assert any(p.startswith("/dev/zero changed:") and "mode 0600" in p for p in problems)
    assert "/dev/net/tun was removed (it was a regular file mode" in " ".join(problems)
    assert any(p.startswith("/dev/fd changed: symlink -> /proc/self/fd ") for p in problems)
    assert any("-> symlink -> /etc " in p for p in problems)
    assert any(p.startswith("/dev/stray appeared: regular file") for p in problems)


def test_new_device_nodes_are_allowed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    before = _take(world)
    loop = (stat.S_IFBLK, 7 << 8 | 9, 0o660, 0, 6, 99, 1, "")
    after = replace(before, dev={**before.dev, "loop9": loop})
    assert hg.compare(before, after) == []
    regular = (stat.S_IFREG, 0, 0o644, 0, 0, 98, 1, "")
    after = replace(before, dev={**before.dev, "null": regular})
    assert hg.compare(before, after)[0].startswith("/dev/null changed: regular file mode 0644")


def test_mount_table(tmp_path: Path) -> None:
    world = _world(tmp_path)
    before = _take(world)
    test_dir = "/tmp/pytest-of-root/pytest-1/test_x0"
    lines = MOUNTINFO.splitlines()
    lines[0] = lines[0].replace("shared:2", "")  # /dev made private
    del lines[2]  # /run unmounted
    del lines[2]  # a volatile mount gone: someone else's business
    lines += [
        "50 24 0:50 / /dev/null rw - devtmpfs devtmpfs rw",
        f"51 27 0:51 / {test_dir}/mnt rw - tmpfs tmpfs rw",
        "52 27 0:52 / /tmp/pytest-of-root/pytest-1/engine0/x rw - overlay overlay rw",
    ]
    world[2].write_text("\n".join(lines) + "\n")
    problems = hg.compare(before, _take(world), (test_dir,))
    assert problems == [
        "host mount /dev (devtmpfs devtmpfs, rw,relatime, shared:2) changed: "
        "now /dev (devtmpfs devtmpfs, rw,relatime, private)",
        "host mount /run (tmpfs tmpfs, rw,nosuid, shared:5) is gone",
        "new mount on the host: /dev/null (devtmpfs devtmpfs, rw, private)",
        f"left mounted: {test_dir}/mnt (tmpfs tmpfs, rw, private)",
    ]


def test_etc_files(tmp_path: Path) -> None:
    world = _world(tmp_path)
    before = _take(world)
    (world[1] / "hosts").write_text("6.6.6.6 evil\n")
    (world[1] / "shadow").unlink()
    problems = hg.compare(before, _take(world))
    assert len(problems) == 2
    assert problems[0].startswith("/etc/hosts changed (sha256 ")
    assert problems[1].endswith("-> missing)")
