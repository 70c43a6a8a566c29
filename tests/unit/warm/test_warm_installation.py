"""The warm server's stale-installation check (portique/warm/installation.py) on a
package and interpreter of its own: the inotify watch as each change the
fingerprint sees (and one it does not), the fingerprint alone without inotify."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from portique.warm import installation
from portique.warm.installation import LOCAL, Installation, filesystem, fingerprint


def tree(tmp_path: Path) -> tuple[str, str]:
    pkg = tmp_path / "pkg"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    (pkg / "__pycache__").mkdir()
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "mod.py").write_text("y = 2\n")
    (pkg / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"old")
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3").write_bytes(b"\x7fELF")
    (bindir / "python").symlink_to("python3")
    return str(pkg), str(bindir / "python")


def watched(tmp_path: Path) -> Installation:
    pkg, exe = tree(tmp_path)
    inst = Installation(pkg, exe)
    assert inst.watch() is None
    assert inst.fd >= 0
    assert not inst.changed()
    return inst


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def rewrite_keeping_mtime(path: Path) -> None:
    """The same size, other contents, the old mtime: invisible to the fingerprint."""
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(data.swapcase())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def replace(path: Path) -> None:
    new = path.with_name(path.name + ".new")
    new.write_bytes(path.read_bytes())
    os.replace(new, path)


CHANGES: dict[str, Callable[[Path], object]] = {
    "mtime": lambda t: bump_mtime(t / "pkg" / "sub" / "mod.py"),
    "rewritten in place": lambda t: rewrite_keeping_mtime(t / "pkg" / "sub" / "mod.py"),
    "appended": lambda t: (t / "pkg" / "__init__.py").write_text("x = 2\n"),
    "replaced": lambda t: replace(t / "pkg" / "sub" / "mod.py"),
    "removed": lambda t: (t / "pkg" / "sub" / "mod.py").unlink(),
    "added": lambda t: (t / "pkg" / "sub" / "new.py").write_text(""),
    "new directory": lambda t: (t / "pkg" / "newsub").mkdir(),
    "directory moved": lambda t: (t / "pkg" / "sub").rename(t / "sub"),
    "interpreter rewritten": lambda t: bump_mtime(t / "venv" / "bin" / "python3"),
    "interpreter replaced": lambda t: replace(t / "venv" / "bin" / "python3"),
    "interpreter relinked": lambda t: _relink(t / "venv" / "bin" / "python"),
}


def _relink(link: Path) -> None:
    shutil.copy(link.with_name("python3"), link.with_name("python3.11"))
    link.unlink()
    link.symlink_to("python3.11")


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_makes_the_installation_changed(tmp_path: Path, change: str) -> None:
    inst = watched(tmp_path)
    CHANGES[change](tmp_path)
    assert inst.changed()
    assert inst.changed()  # it stays so: nobody reads the events


def test_a_write_through_another_link_is_seen(tmp_path: Path) -> None:
    # A hard link from outside the package (uv's cache links its files so):
    # the file's own watch sees a write that its directory's does not.
    inst = watched(tmp_path)
    outside = tmp_path / "cache-copy"
    os.link(tmp_path / "pkg" / "sub" / "mod.py", outside)
    outside.write_text("y = 3\n")
    assert inst.changed()


def test_reading_and_bytecode_are_not_changes(tmp_path: Path) -> None:
    inst = watched(tmp_path)
    (tmp_path / "pkg" / "sub" / "mod.py").read_bytes()
    (tmp_path / "pkg" / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"new")
    (tmp_path / "pkg" / "sub" / "__pycache__" / "other.cpython-311.pyc").write_bytes(b"")
    assert not inst.changed()


def test_a_change_before_the_watch_is_seen(tmp_path: Path) -> None:
    pkg, exe = tree(tmp_path)
    inst = Installation(pkg, exe)
    bump_mtime(Path(pkg) / "__init__.py")  # while the server imported its modules
    assert inst.watch() is None
    assert inst.changed()


def test_the_watch_is_inherited_by_forks(tmp_path: Path) -> None:
    # A spare forked before the change sees it too.
    inst = watched(tmp_path)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: waits for the change, then looks
        code = 1
        try:
            os.read(r, 1)
            code = 0 if inst.changed() else 2
        finally:
            os._exit(code)
    os.close(r)
    (tmp_path / "pkg" / "__init__.py").write_text("x = 3\n")
    os.write(w, b".")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inst.changed()


def test_without_inotify_the_fingerprint_decides(tmp_path: Path) -> None:
    pkg, exe = tree(tmp_path)
    inst = Installation(pkg, exe)  # never watched: as when inotify_init1 fails
    assert not inst.changed()
    (Path(pkg) / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"new")
    assert not inst.changed()
    bump_mtime(Path(pkg) / "sub" / "mod.py")
    assert inst.changed()


def test_tmp_is_local() -> None:
    assert filesystem("/tmp") in LOCAL


def test_on_a_network_filesystem_the_fingerprint_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another machine's write to an nfs or 9p file raises no inotify event here.
    monkeypatch.setattr(installation, "filesystem", lambda _path: "nfs4")
    pkg, exe = tree(tmp_path)
    inst = Installation(pkg, exe)
    assert inst.watch() == f"{pkg} is on nfs4: the installation is fingerprinted at each command"
    assert inst.fd == -1
    assert not inst.changed()
    bump_mtime(Path(pkg) / "sub" / "mod.py")
    assert inst.changed()


def test_the_fingerprint_follows_the_files(tmp_path: Path) -> None:
    pkg, exe = tree(tmp_path)
    before = fingerprint(pkg, exe)
    assert fingerprint(pkg, exe) == before
    bump_mtime(Path(exe))
    assert fingerprint(pkg, exe) != before
    before = fingerprint(pkg, exe)
    (Path(pkg) / "sub" / "new.py").write_text("")
    assert fingerprint(pkg, exe) != before


def test_the_worker_closes_the_watch(tmp_path: Path) -> None:
    inst = watched(tmp_path)
    fd = inst.fd
    inst.close()
    assert inst.fd == -1
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
