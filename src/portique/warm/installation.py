"""Has the installation changed since the warm server started?

A worker that lazily imported a module rewritten since its server started
would run new code against old: a server serves only while the files it was
started from are unchanged, and a worker checks that at every request, so
the check has to cost next to nothing.

- `Installation()`, before the server's imports: the fingerprint of every
  file of the package (path, mtime, size, inode; `__pycache__` aside) and of
  the interpreter.
- `watch()`, once the server imported all it will: an inotify instance
  watching every directory of the package (its entries, itself), every file
  of it and the interpreter (contents and attributes), and the interpreter's
  directories (its entries); then the fingerprint again.
- `changed()`, per request in a worker: True if the fingerprint differed at
  `watch()`, or if the instance is readable (poll, timeout 0). Nobody reads
  its events, so once one arrived it stays readable in the server and in
  every worker and spare, forked before or after: O(1), and sticky.

Why that is sound: a change before the watches were in place shows in the
second fingerprint (as it did when each request took one). After, each input
of the fingerprint raises an event: a name added, removed or renamed in a
directory (IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO on the directory, whose
only link is the one we watch, and IN_CREATE for a new directory, whose
files the watches do not reach); a file's size and contents (IN_MODIFY, for
writes and truncation) or mtime (IN_ATTRIB, also when it is replaced: its
link count drops) on the file's own watch, whichever of its links the write
came through; a directory moved or removed (IN_MOVE_SELF, IN_DELETE_SELF).
Reading a file (an import) raises none of them. What inotify does not see:
writes through a shared mmap and mounts over the files; and an event for what
the fingerprint ignores (chmod, a file rewritten with its mtime put back, a
`__pycache__` directory created by a first import in a tree never compiled:
setup.sh compiles it) makes the server stale too: it is restarted, never
wrong.

inotify sees the writes made through this kernel only: on a network
filesystem (nfs, 9p, cifs, fuse, ...) another machine's would raise no
event. So the watch is used only where the package and the interpreter are
on a local filesystem (LOCAL); elsewhere, and without inotify (the user's
instances are limited: EMFILE), each request takes the fingerprint again
(~1 ms for ~300 files), as before.
"""

from __future__ import annotations

import os
import select
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

# Filesystems where every change goes through this kernel (and so reaches inotify).
LOCAL = frozenset(
    {"btrfs", "erofs", "exfat", "ext2", "ext3", "ext4", "f2fs", "overlay", "ramfs"}
    | {"squashfs", "tmpfs", "vfat", "xfs", "zfs"}
)


def _masks() -> tuple[int, int, int]:
    from portique.linux import inotify as i

    entries = i.IN_CREATE | i.IN_DELETE | i.IN_MOVED_FROM | i.IN_MOVED_TO
    itself = i.IN_DELETE_SELF | i.IN_MOVE_SELF
    contents = i.IN_MODIFY | i.IN_ATTRIB
    # directory (with its files' events through it), file, interpreter's directory
    return entries | itself | contents, contents | itself, entries


class Installation:
    """What a server was started from (see the module's docstring): the
    portique package and interpreter this process runs, unless given."""

    def __init__(self, package: str | None = None, executable: str | None = None) -> None:
        self.package = package or _package_dir()
        self.executable = executable or sys.executable
        self.fingerprint = fingerprint(self.package, self.executable)
        self.fd = -1  # the inotify instance, once watch() made it
        self.changed_early = False

    def watch(self) -> str | None:
        """Watch the files (see the module's docstring); why not, or None."""
        from portique.linux import inotify

        for path in (self.package, os.path.dirname(os.path.realpath(self.executable))):
            fs = filesystem(path)
            if fs not in LOCAL:
                return f"{path} is on {fs}: the installation is fingerprinted at each command"
        try:
            fd = inotify.instance()
        except OSError as exc:
            return f"inotify: {exc}: the installation is fingerprinted at each command"
        try:
            _watch_all(fd, self.package, self.executable)
        except OSError as exc:
            os.close(fd)
            return f"inotify: {exc}: the installation is fingerprinted at each command"
        self.fd = fd
        self.changed_early = self._fingerprint() != self.fingerprint
        return None

    def changed(self) -> bool:
        if self.fd < 0:
            return self._fingerprint() != self.fingerprint
        if self.changed_early:
            return True
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        return bool(p.poll(0))

    def _fingerprint(self) -> tuple[object, ...]:
        return fingerprint(self.package, self.executable)

    def close(self) -> None:
        """In a worker, once it checked: nothing of the server's reaches a container."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _watch_all(fd: int, package: str, executable: str) -> None:
    from portique.linux.inotify import add_watch

    directory, file, entries = _masks()
    # Each directory is watched before it is listed (_tree yields it first): a
    # name added after the listing raises an event, one added before is
    # listed and watched.
    for d, e in _tree(package):
        if e is None:
            add_watch(fd, d, directory)
        elif e.is_file(follow_symlinks=False):
            add_watch(fd, e.path, file)
    # The interpreter the fingerprint stats (through its links): the file, and
    # the directories of its name and of its target, where it would be replaced.
    exe = os.path.realpath(executable)
    add_watch(fd, exe, file)
    for d in {os.path.dirname(executable), os.path.dirname(exe)}:
        add_watch(fd, d, entries)


def filesystem(path: str) -> str | None:
    """The type of the filesystem `path` is on (/proc/self/mountinfo), or None."""
    dev = os.stat(path).st_dev
    want = f"{os.major(dev)}:{os.minor(dev)}"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == want and "-" in fields:
                return fields[fields.index("-") + 1]
    return None


def _package_dir() -> str:
    import portique

    return os.path.dirname(portique.__file__)


def _tree(package: str) -> Iterator[tuple[str, os.DirEntry[str] | None]]:
    """The package as the watch and the fingerprint see it: each directory
    (`(dir, None)`, before it is listed), then each of its entries but
    subdirectories (`(dir, entry)`); `__pycache__` directories left out."""
    pending = [package]
    while pending:
        d = pending.pop()
        yield d, None
        with os.scandir(d) as it:
            for e in it:
                if not e.is_dir(follow_symlinks=False):
                    yield d, e
                elif e.name != "__pycache__":
                    pending.append(e.path)


def fingerprint(package: str, executable: str) -> tuple[object, ...]:
    """The installation as files: every file of the package (path, mtime, size,
    inode) and the interpreter."""
    found: list[tuple[str, int, int, int]] = []
    for _d, e in _tree(package):
        if e is not None:
            st = e.stat(follow_symlinks=False)
            found.append((e.path, st.st_mtime_ns, st.st_size, st.st_ino))
    found.sort()
    try:
        st = os.stat(executable)
        exe: tuple[object, ...] = (executable, st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        exe = (executable,)
    return (exe, tuple(found))
