"""A guard of the host's invariants around every root test (issue 9, item 8).

The host's /dev/null was once found replaced by a regular file after a run of
hostile tests, and nothing said which test did it. The `host_guard` fixture
(autouse in tests/integration and tests/compat) takes a snapshot before and
after each test and fails the test whose run changed:

- the host's /dev nodes: every device node, symlink and directory directly
  in /dev and /dev/net, by type, rdev, mode, owner, inode and (but for
  directories) ctime: a node unlinked and made again is a replacement too;
  a new device node is allowed (devtmpfs adds one for each new loop
  device), any other new entry is not;
- the host's mounts: every mount outside the places where tests and other
  programs mount and unmount all the time (VOLATILE) must stay, with the same
  id, source, type, options and propagation; no new mount may appear there;
  and no mount may stay under a directory the test itself got from pytest
  (tmp_path and friends);
- /etc/hosts, resolv.conf, hostname, passwd, group, shadow: content hashes.

It is cheap (one scandir of /dev, one read of mountinfo, six small files:
well under a millisecond) and looks only at what is stable while the suite
runs: it ignores the engine roots under /tmp and /run, where monitors of
earlier tests' containers mount and unmount concurrently, and /dev/pts and
/dev/shm, whose entries come and go with every terminal and semaphore.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DEV = "/dev"
DEV_SUBDIRS = ("net",)
ETC_FILES = ("hosts", "resolv.conf", "hostname", "passwd", "group", "shadow")
# Mount points under these are made and removed by tests, engines and other
# programs at any time: not the host's own.
VOLATILE = ("/tmp/", "/var/tmp/", "/run/", "/var/lib/portique/", "/work/", "/mnt/", "/media/")


@dataclass(frozen=True)
class Mount:
    id: int
    point: str
    source: str
    fstype: str
    options: str
    propagation: str

    def describe(self) -> str:
        return f"{self.point} ({self.fstype} {self.source}, {self.options}, {self.propagation or 'private'})"


@dataclass(frozen=True)
class Snapshot:
    dev: dict[str, tuple[int, int, int, int, int, int, int, str]]
    mounts: dict[int, Mount]
    etc: dict[str, str]


def _dev_entries(dev: str) -> dict[str, tuple[int, int, int, int, int, int, int, str]]:
    out = {}
    for sub in ("", *DEV_SUBDIRS):
        base = os.path.join(dev, sub) if sub else dev
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            continue
        for e in entries:
            st = e.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                # pts, shm, mqueue...: their entries come and go (not looked at),
                # and so do their times; a directory made or removed is a change.
                key = f"{sub}/{e.name}" if sub else e.name
                out[key] = (stat.S_IFDIR, 0, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                            st.st_ino, 0, "")  # fmt: skip
                continue
            link = os.readlink(e.path) if stat.S_ISLNK(st.st_mode) else ""
            key = f"{sub}/{e.name}" if sub else e.name
            out[key] = (
                stat.S_IFMT(st.st_mode),
                st.st_rdev,
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_ino,
                st.st_ctime_ns,  # a node made again may get the same inode number
                link,
            )
    return out


def parse_mountinfo(text: str) -> dict[int, Mount]:
    out = {}
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        f = pre.split()
        fstype, source = [*post.split(), "", ""][:2]
        propagation = " ".join(sorted(f[6:]))
        point = f[4].replace("\\040", " ")
        out[int(f[0])] = Mount(int(f[0]), point, source, fstype, f[5], propagation)
    return out


def _hash(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except FileNotFoundError:
        return "missing"


def take(dev: str = DEV, etc: str = "/etc", mountinfo: str = "/proc/self/mountinfo") -> Snapshot:
    with open(mountinfo) as f:
        mounts = parse_mountinfo(f.read())
    return Snapshot(
        _dev_entries(dev), mounts, {name: _hash(os.path.join(etc, name)) for name in ETC_FILES}
    )


def is_volatile(point: str) -> bool:
    return point.startswith(VOLATILE)  # /run itself is the host's, /run/netns/x is not


def _kind(mode: int) -> str:
    return {
        stat.S_IFCHR: "char device",
        stat.S_IFBLK: "block device",
        stat.S_IFLNK: "symlink",
        stat.S_IFDIR: "directory",
        stat.S_IFREG: "regular file",
        stat.S_IFIFO: "fifo",
        stat.S_IFSOCK: "socket",
    }.get(mode, oct(mode))


def _node(v: tuple[int, int, int, int, int, int, int, str]) -> str:
    kind, rdev, mode, uid, gid, ino, ctime, link = v
    if link:
        return f"symlink -> {link} inode {ino} ctime {ctime}"
    dev = f" {os.major(rdev)}:{os.minor(rdev)}" if kind in (stat.S_IFCHR, stat.S_IFBLK) else ""
    return f"{_kind(kind)}{dev} mode {mode:04o} owner {uid}:{gid} inode {ino} ctime {ctime}"


def compare(before: Snapshot, after: Snapshot, test_dirs: tuple[str, ...] = ()) -> list[str]:
    """What changed on the host between two snapshots, one line per change."""
    problems = []
    for name in sorted(before.dev.keys() | after.dev.keys()):
        old, new = before.dev.get(name), after.dev.get(name)
        if old == new:
            continue
        if old is None and new is not None:
            if new[0] in (stat.S_IFCHR, stat.S_IFBLK):
                continue  # devtmpfs adds nodes for new devices (loop devices)
            problems.append(f"/dev/{name} appeared: {_node(new)}")
        elif new is None and old is not None:
            problems.append(f"/dev/{name} was removed (it was a {_node(old)})")
        elif old is not None and new is not None:
            problems.append(f"/dev/{name} changed: {_node(old)} -> {_node(new)}")
    for mid, m in sorted(before.mounts.items()):
        if is_volatile(m.point):
            continue
        now = after.mounts.get(mid)
        if now is None:
            problems.append(f"host mount {m.describe()} is gone")
        elif now != m:
            problems.append(f"host mount {m.describe()} changed: now {now.describe()}")
    for mid, m in sorted(after.mounts.items()):
        if mid in before.mounts:
            continue
        if not is_volatile(m.point):
            problems.append(f"new mount on the host: {m.describe()}")
        elif any((m.point + "/").startswith(d.rstrip("/") + "/") for d in test_dirs):
            problems.append(f"left mounted: {m.describe()}")
    problems.extend(
        f"/etc/{name} changed (sha256 {before.etc[name][:12]} -> {after.etc[name][:12]})"
        for name in ETC_FILES
        if before.etc[name] != after.etc[name]
    )
    return problems


@pytest.fixture(autouse=True)
def host_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the test whose run changed the host's /dev, mounts or /etc files."""
    base = tmp_path_factory.getbasetemp()
    dirs_before = set(os.listdir(base))
    before = take()
    yield
    # Torn down after the test's own fixtures (autouse, set up first): their
    # clean-up has run. The test's directories are those pytest made for it.
    test_dirs = tuple(str(Path(base, d)) for d in set(os.listdir(base)) - dirs_before)
    problems = compare(before, take(), test_dirs)
    if problems:
        pytest.fail("the test changed the host: " + "; ".join(problems), pytrace=False)
