"""A container's files as tar streams: `cp CONTAINER:SRC -` and `cp - CONTAINER:DEST`.

    stat = get_archive(eng, "web", "/etc", sys.stdout.buffer)
    put_archive(eng, "web", "/srv", sys.stdin.buffer, copy_uid_gid=False)

`GET /containers/{id}/archive?path=` (the tar, and the path's stat for the
X-Docker-Container-Path-Stat header) and `PUT /containers/{id}/archive?path=
&copyUIDGID=` will call these. The container side is walked as in
engine/copy.py: directory fds, never a symlink followed out of the root.

A tar put into a container is hostile: every member is created below the
destination one component at a time with O_NOFOLLOW (a member through a
symlink, absolute or with `..`, is refused, as is a hard link to outside the
destination); files are written to a new name and renamed into place (never
opened through a name the container controls); no device node is made.
Owners are the tar's, as Docker keeps them; with `copy_uid_gid` and a
container that has a USER, that user's (Docker's copyUIDGID).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from portique.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from portique.engine.engine import Engine

__all__ = ["get_archive", "put_archive", "stat_path"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_MEMBERS = 1_000_000


def get_archive(
    eng: Engine, container: str, path: str, out: BinaryIO, *, follow: bool = False
) -> dict[str, Any]:
    """`path` of the container as a tar written to `out` (its base name at the
    top, as Docker's); returns the path's stat (name, size, mode, mtime,
    linkTarget). `follow`: a symlink at `path` is followed (inside the root).
    dockerd's `archive-path` event once it is done."""
    from portique.engine import containers, events
    from portique.engine.copy import _export_dir, _export_entry

    row = containers.get(eng, container)
    with _opened_entry(eng, row, container, path, follow) as (held, name, st, link):
        name = name or "."
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if follow or name == ".":
                _add_resolved(tar, held, name, st)
            else:
                dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=held)
                try:
                    sub = _export_entry(tar, dfd, name, "")
                    if sub >= 0:
                        try:
                            _export_dir(tar, sub, name + "/", 0)
                        finally:
                            os.close(sub)
                finally:
                    os.close(dfd)
    events.container(eng, row, "archive-path")
    return _stat_doc(name, st, link)


def stat_path(eng: Engine, container: str, path: str, *, follow: bool = False) -> dict[str, Any]:
    """The stat `get_archive` would return, without the tar (`HEAD .../archive`)."""
    from portique.engine import containers

    row = containers.get(eng, container)
    with _opened_entry(eng, row, container, path, follow) as (_held, name, st, link):
        return _stat_doc(name or "/", st, link)


@contextlib.contextmanager
def _opened_entry(
    eng: Engine, row: Any, ref: str, path: str, follow: bool
) -> Iterator[tuple[int, str, os.stat_result, str]]:
    """`path` resolved inside the container's root: an O_PATH fd of the entry
    (with `follow`, or for the root itself) or else of its parent, the
    entry's base name ("" for the root), its stat (lstat without `follow`)
    and a symlink's target ("" when followed). NotFound in Docker's words."""
    from portique.engine.copy import container_root
    from portique.rootpath import open_in_root

    norm = os.path.normpath("/" + path)
    parent, name = os.path.split(norm)
    missing = NotFound(f"Could not find the file {path} in container {ref}")
    whole = follow or not name
    with container_root(eng, row) as root:
        rfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            held = open_in_root(rfd, norm if whole else parent, flags=os.O_PATH)
        except FileNotFoundError:
            raise missing from None
        finally:
            os.close(rfd)
        try:
            if whole:
                st, link = os.fstat(held), ""
            else:
                try:
                    st = os.stat(name, dir_fd=held, follow_symlinks=False)
                except FileNotFoundError:
                    raise missing from None
                link = os.readlink(name, dir_fd=held) if stat.S_ISLNK(st.st_mode) else ""
            yield held, name, st, link
        finally:
            os.close(held)


def _stat_doc(name: str, st: os.stat_result, link: str) -> dict[str, Any]:
    return {
        "name": name,
        "size": st.st_size,
        "mode": st.st_mode,
        "mtime": st.st_mtime,
        "linkTarget": link,
    }


def _add_resolved(tar: tarfile.TarFile, fd: int, name: str, st: os.stat_result) -> None:
    """An entry opened already (O_PATH, symlinks resolved), named `name`."""
    from portique.engine.copy import _export_dir, _tarinfo

    info = _tarinfo(name, st)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        try:
            _export_dir(tar, dfd, name + "/", 0)
        finally:
            os.close(dfd)
    elif stat.S_ISREG(st.st_mode):
        rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(rfd, "rb") as f:
            info.size = os.fstat(rfd).st_size
            tar.addfile(info, f)


def put_archive(
    eng: Engine, container: str, path: str, stream: BinaryIO, *, copy_uid_gid: bool = False
) -> None:
    """Extract the tar `stream` into the container's directory `path`; dockerd's
    `extract-to-dir` event once it is done."""
    from portique.engine import containers, events

    _put_archive(eng, container, path, stream, copy_uid_gid=copy_uid_gid)
    events.container(eng, containers.get(eng, container), "extract-to-dir")


def _put_archive(
    eng: Engine, container: str, path: str, stream: BinaryIO, *, copy_uid_gid: bool = False
) -> None:
    from portique.engine import containers
    from portique.engine.copy import container_root
    from portique.rootpath import open_in_root

    row = containers.get(eng, container)
    user = str(row.config.get("Config", {}).get("User") or "")
    with container_root(eng, row) as root:
        owner = None
        if copy_uid_gid and user:
            from portique.engine.userdb import lookup

            resolved = lookup(root, user)
            owner = (resolved.uid, resolved.gid)
        rfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                pfd = open_in_root(rfd, os.path.normpath("/" + path), flags=os.O_PATH)
            except FileNotFoundError:
                raise NotFound(f"Could not find the file {path} in container {container}") from None
            try:
                if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                    raise InvalidArgument("extraction point is not a directory")
                dest = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            finally:
                os.close(pfd)
        finally:
            os.close(rfd)
        try:
            _extract(stream, dest, owner)
        finally:
            os.close(dest)


def _extract(stream: BinaryIO, dest: int, owner: tuple[int, int] | None) -> None:
    try:
        tar = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"the input is not a tar archive: {exc}") from None
    with tar:
        try:
            for count, m in enumerate(tar, 1):
                if count > _MAX_MEMBERS:
                    raise InvalidArgument(f"the archive has more than {_MAX_MEMBERS} entries")
                _member(tar, m, dest, owner)
        except tarfile.TarError as exc:
            raise InvalidArgument(f"reading the archive: {exc}") from None


def _parts(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidArgument(f"refusing to extract {name[:200]!r}: it leaves the destination")
    return parts


def _walk_to(dest: int, parts: list[str], *, make: bool) -> int:
    """A new fd of the directory `parts` below `dest`, each component opened
    with O_NOFOLLOW (made 0755 when missing and `make`)."""
    fd = os.dup(dest)
    try:
        for part in parts:
            try:
                sub = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                sub = os.open(part, _DIR, dir_fd=fd)
            except OSError:
                raise InvalidArgument(
                    f"refusing to extract below {'/'.join(parts)[:200]!r}:"
                    f" {part[:100]!r} is not a directory (a symlink is never followed)"
                ) from None
            os.close(fd)
            fd = sub
        return fd
    except BaseException:
        os.close(fd)
        raise


def _member(
    tar: tarfile.TarFile, m: tarfile.TarInfo, dest: int, owner: tuple[int, int] | None
) -> None:
    parts = _parts(m.name)
    if not parts:
        return  # "./": the destination itself
    uid, gid = owner if owner is not None else (m.uid, m.gid)
    pfd = _walk_to(dest, parts[:-1], make=True)
    name = parts[-1]
    try:
        existing = None
        with contextlib.suppress(FileNotFoundError):
            existing = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(name, dir_fd=pfd)
                existing = None
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, _DIR, dir_fd=pfd)
            try:
                os.chown(fd, uid, gid)
                os.chmod(fd, m.mode & 0o7777)
            finally:
                os.close(fd)
            return
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise InvalidArgument(
                f"cannot overwrite directory {m.name[:200]!r} with a non-directory"
            )
        if m.isreg():
            f = tar.extractfile(m)
            assert f is not None
            _write_new(f, pfd, name, m.mode & 0o7777, (uid, gid), m.mtime)
        elif m.issym():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=pfd)
            os.symlink(m.linkname, name, dir_fd=pfd)
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            target = _parts(m.linkname)
            if not target:
                raise InvalidArgument(f"hard link {m.name[:200]!r} to the destination itself")
            tfd = _walk_to(dest, target[:-1], make=False)
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=pfd)
                os.link(target[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.isfifo():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=pfd)
            os.mkfifo(name, m.mode & 0o777, dir_fd=pfd)
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
        # Device nodes are never made from a tar: a container that may have them
        # makes them itself.
    finally:
        os.close(pfd)


def _write_new(
    src: IO[bytes], pfd: int, name: str, mode: int, owner: tuple[int, int], mtime: float
) -> None:
    """A new file with `src`'s data renamed over `name` (never opened through it)."""
    from portique.engine.copy import new_file_in
    from portique.termio import write_all

    with new_file_in(pfd, name) as (out, tmp):
        while chunk := src.read(1 << 20):
            write_all(out, chunk)
        os.fchown(out, *owner)
        os.fchmod(out, mode)  # after the chown, which drops set-id bits
        os.utime(out, (mtime, mtime))
        os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
