"""Local volumes (<root>/volumes/<name>/_data) and a container's mount plan.

The volume verbs (`volume create|ls|inspect|rm|prune`) call `create`,
`list_volumes`, `inspect`, `remove_volume` and `prune_volumes`, in Docker's
shapes (the API's Volume JSON, Docker's filters map), as the API will.

A container's mounts are planned once, at create time, into "MountPoints"
(stored with the container): named volumes are created if missing, each image
VOLUME without a user mount gets an anonymous volume (64 hex name), bind
sources are checked. At each start the plan turns into OCI mounts.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.engine import db
from portique.engine import filters as flt
from portique.engine import mount_opts as opt  # (options re-exports these; it loads far more)
from portique.errors import Conflict, InvalidArgument, NoSuchObject, shown

if TYPE_CHECKING:
    from portique.engine.engine import Engine


def volume_data(eng: Engine, name: str) -> Path:
    return eng.volumes_dir / name / "_data"


def create_volume(
    eng: Engine,
    name: str = "",
    *,
    labels: Mapping[str, str] | None = None,
    anonymous: bool = False,
    driver: str = "local",
    options: Mapping[str, str] | None = None,
) -> tuple[db.VolumeRow, bool]:
    """Create `name` (a random one when empty); (row, created) — an existing volume is reused."""
    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported (only 'local')")
    if options:
        raise InvalidArgument("the local volume driver takes no options here")
    name = name or os.urandom(32).hex()
    opt.check_volume_name(name)
    conn = eng.db
    if not conn.in_transaction:
        # The directory is made inside the transaction that inserts the row, so
        # a directory without a row, seen inside a transaction, is a crash's
        # leftover (`sweep_orphan_dirs`).
        with db.transaction(conn):
            return create_volume(eng, name, labels=labels, anonymous=anonymous)
    existing = db.get_volume(conn, name)
    if existing is not None:
        return existing, False
    data = volume_data(eng, name)
    row = db.VolumeRow(
        name=name,
        driver="local",
        mountpoint=str(data),
        created=time.time(),
        labels=dict(labels or {}),
        anonymous=anonymous,
    )
    data.mkdir(parents=True, exist_ok=True, mode=0o755)
    db.insert_volume(conn, row)
    return row, True


def create(
    eng: Engine,
    name: str = "",
    *,
    driver: str = "local",
    labels: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`POST /volumes/create`: the volume (an existing one of that name is reused)."""
    vol, created = create_volume(eng, name, labels=labels, driver=driver, options=options)
    if created:
        from portique.engine import events

        events.volume(eng, vol.name, "create")
    return volume_json(vol)


def volume_json(vol: db.VolumeRow) -> dict[str, Any]:
    """Docker's Volume object (`volume inspect`, `GET /volumes`)."""
    return {
        "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(vol.created)),
        "Driver": vol.driver,
        "Labels": dict(vol.labels) or None,
        "Mountpoint": vol.mountpoint,
        "Name": vol.name,
        "Options": dict(vol.options) or None,
        "Scope": "local",
    }


def inspect(eng: Engine, name: str) -> dict[str, Any]:
    """`GET /volumes/{name}`."""
    vol = db.get_volume(eng.db, name)
    if vol is None:
        raise NoSuchObject("volume", name)
    return volume_json(vol)


LIST_FILTERS = ("name", "dangling", "label", "driver")


def volumes_in_use(eng: Engine) -> set[str]:
    """The names of the volumes some container (of any status) mounts."""
    conn = eng.db
    return {v.name for cid in db.iter_ids(conn) for v in db.container_volumes(conn, cid)}


def list_volumes(eng: Engine, filters: flt.Filters | None = None) -> list[dict[str, Any]]:
    """`GET /volumes`: the volumes, by name, filtered (name, dangling, label, driver)."""
    wanted = flt.check(filters, LIST_FILTERS)
    dangling = [flt.flag("dangling", v) for v in wanted.get("dangling", [])]
    used = volumes_in_use(eng) if dangling else set()
    out = []
    for v in db.list_volumes(eng.db):
        if "name" in wanted and not any(n in v.name for n in wanted["name"]):
            continue
        if dangling and not any((v.name not in used) == d for d in dangling):
            continue
        if not flt.labels_match(v.labels, wanted.get("label", [])):
            continue
        if "driver" in wanted and v.driver not in wanted["driver"]:
            continue
        out.append(volume_json(v))
    return out


def sweep_orphan_dirs(eng: Engine) -> list[str]:
    """Remove volume directories no row names: left by a process killed inside the
    transaction that made one, or after a removal's row delete. Checked inside a
    write transaction, where no creation is half done."""
    base = eng.volumes_dir
    conn = eng.db

    def unnamed() -> list[str]:
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        return [n for n in names if not n.startswith(".") and db.get_volume(conn, n) is None]

    gone = []
    if unnamed():
        with db.transaction(conn):
            for n in unnamed():
                os.rename(base / n, base / f".trash-{os.urandom(8).hex()}")
                gone.append(n)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(base):
            if entry.startswith(".trash-"):
                remove_tree(base / entry)
    return gone


def remove_volume(eng: Engine, name: str, *, force: bool = False) -> None:
    conn = eng.db
    with db.transaction(conn):
        vol = db.get_volume(conn, name)
        if vol is None:
            if force:
                return
            raise NoSuchObject("volume", name)
        users = db.volume_users(conn, name)
        if users:
            raise Conflict(
                f"remove {name}: volume is in use - [{', '.join(users)}]",
            )
        db.delete_volume(conn, name)
    remove_tree(eng.volumes_dir / name)
    from portique.engine import events

    events.volume(eng, name, "destroy")


PRUNE_FILTERS = ("label", "label!", "all")


def prune_volumes(
    eng: Engine, *, all_volumes: bool = False, filters: flt.Filters | None = None
) -> list[str]:
    """The names `prune_report` removed."""
    return prune_report(eng, all_volumes=all_volumes, filters=filters)[0]


def prune_report(
    eng: Engine, *, all_volumes: bool = False, filters: flt.Filters | None = None
) -> tuple[list[str], int]:
    """`POST /volumes/prune`: (names, bytes reclaimed) of the unused volumes
    removed: anonymous ones only unless `all_volumes` or the filter `all=true`
    (Docker 23+ semantics), among those the label filters keep."""
    wanted = flt.check(filters, PRUNE_FILTERS)
    all_volumes = all_volumes or any(flt.flag("all", v) for v in wanted.get("all", []))
    eng.recover()  # a removal cut short may still hold anonymous volumes
    removed = []
    reclaimed = 0
    for vol in db.list_volumes(eng.db):
        if not (vol.anonymous or all_volumes):
            continue
        if not flt.labels_match(vol.labels, wanted.get("label", [])):
            continue
        if any(flt.label_matches(vol.labels, w) for w in wanted.get("label!", [])):
            continue
        if db.volume_users(eng.db, vol.name):
            continue
        size = volume_size(vol.mountpoint)
        try:
            remove_volume(eng, vol.name)
        except (Conflict, NoSuchObject):
            continue  # in use since, or removed by another prune
        removed.append(vol.name)
        reclaimed += size
    return removed, reclaimed


_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path) -> None:
    """rm -rf of a tree containers wrote (a volume, a container's directory): at any
    depth (shutil.rmtree recurses per level: a container's 2000 nested directories
    made it raise RecursionError), never following a symlink; what cannot be
    removed stays, as with rmtree's ignore_errors."""
    from portique.image.snapshots import remove_tree as remove

    with contextlib.suppress(OSError):
        remove(path)


def volume_size(path: str) -> int:
    """Bytes of the files under `path` (a volume, a container's upper dir).

    Containers make these trees: they may nest far deeper than Python's
    recursion limit or PATH_MAX. So one directory fd at a time, walking down
    by name (O_NOFOLLOW) and up by "..", which must be the directory we came
    from (a tree changed under us ends the walk with what was counted).
    """
    try:
        fd = os.open(path, _DIR_NOFOLLOW)
    except OSError:
        return 0
    stack: list[tuple[list[str], tuple[int, int]]] = []  # per level: subdirs left, identity
    try:
        total = _scan_level(fd, stack)
        while stack:
            subdirs, _ = stack[-1]
            if not subdirs:
                stack.pop()
                if not stack:
                    break
                parent = os.open("..", _DIR_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = parent
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != stack[-1][1]:
                    break  # moved while we walked
                continue
            try:
                sub = os.open(subdirs.pop(), _DIR_NOFOLLOW, dir_fd=fd)
            except OSError:
                continue  # gone since the listing
            os.close(fd)
            fd = sub
            total += _scan_level(fd, stack)
    finally:
        os.close(fd)
    return total


def _scan_level(fd: int, stack: list[tuple[list[str], tuple[int, int]]]) -> int:
    """Sum the non-directories in `fd`; push its subdirectories on `stack`."""
    total = 0
    subdirs = []
    with os.scandir(fd) as it:
        for entry in it:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(entry.name)
            else:
                total += st.st_blocks * 512
    here = os.fstat(fd)
    stack.append((subdirs, (here.st_dev, here.st_ino)))
    return total


# -------------------------------------------------------------- mount plans


def volumes_from(eng: Engine, host: Mapping[str, Any], taken: set[str]) -> list[Any]:
    """--volumes-from X[:ro|rw]: X's volumes and bind mounts at the same places
    (not its tmpfs), read-only or not as in X unless the suffix says; a place the
    container mounts something else on keeps that."""
    out = []
    for spec in host.get("VolumesFrom") or ():
        ref, _, mode = str(spec).partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidArgument(f"invalid mode for --volumes-from: {shown(mode)}")
        other = db.resolve_container(eng.db, ref)
        for p in other.config.get("MountPoints") or []:
            target = str(p.get("Destination") or "")
            if p.get("Type") not in ("bind", "volume") or target in taken:
                continue
            taken.add(target)
            readonly = (mode == "ro") or (mode == "" and not p.get("RW", True))
            if p["Type"] == "bind":
                out.append(opt.MountSpec(opt.MountType.BIND, target, str(p["Source"]), readonly,
                                         str(p.get("Propagation") or "")))  # fmt: skip
            else:
                out.append(opt.MountSpec(opt.MountType.VOLUME, target, str(p["Name"]), readonly,
                                         nocopy=True))  # fmt: skip
    return out


def plan_mounts(
    eng: Engine,
    specs: Iterable[opt.MountSpec],
    image_volumes: Iterable[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """MountPoints for the container, and the names of volumes it uses.

    Call inside the transaction that inserts the container, so a failure
    leaves no volume row behind (directories are removed by the caller).
    """
    points: list[dict[str, Any]] = []
    used: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.target in seen:
            raise InvalidArgument(f"duplicate mount point: {spec.target}")
        seen.add(spec.target)
        points.append(_plan_one(eng, spec, used))
    for target in image_volumes:
        norm = os.path.normpath(target)
        if norm in seen or not norm.startswith("/"):
            continue
        seen.add(norm)
        points.append(_plan_one(eng, opt.MountSpec(opt.MountType.VOLUME, norm), used))
    return points, used


def _plan_one(eng: Engine, spec: opt.MountSpec, used: list[str]) -> dict[str, Any]:
    point: dict[str, Any] = {
        "Type": str(spec.type),
        "Destination": spec.target,
        "RW": not spec.readonly,
        "Propagation": spec.propagation or ("rprivate" if spec.type is opt.MountType.BIND else ""),
    }
    if spec.type is opt.MountType.BIND:
        src = Path(spec.source)
        if not src.exists():
            if not spec.create_host_path:
                raise InvalidArgument(
                    f'invalid mount config for type "bind": bind source path does not exist: {src}'
                )
            src.mkdir(parents=True, exist_ok=True)
        point.update(Source=str(src), Name="", Driver="", Mode="ro" if spec.readonly else "")
    elif spec.type is opt.MountType.VOLUME:
        vol, _created = create_volume(eng, spec.source, anonymous=not spec.source)
        used.append(vol.name)
        point.update(
            Source=vol.mountpoint, Name=vol.name, Driver="local", Mode="z", NoCopy=spec.nocopy
        )
    else:
        point.update(Source="", Name="", Driver="", Mode="", Options=list(spec.options))
    return point


def mount_events(eng: Engine, cid: str, points: Iterable[Mapping[str, Any]], action: str) -> None:
    """A container's volumes mounted at its start, unmounted at its exit: dockerd's
    `volume mount` (container, destination, driver, propagation, read/write) and
    `volume unmount` (container, driver) events."""
    from portique.engine import events

    for p in points:
        if p.get("Type") != "volume" or not p.get("Name"):
            continue
        extra = {"container": cid}
        if action == "mount":
            extra["destination"] = str(p.get("Destination") or "")
            extra["propagation"] = str(p.get("Propagation") or "")
            extra["read/write"] = "true" if p.get("RW", True) else "false"
        events.volume(eng, str(p["Name"]), action, **extra)


def oci_mounts(points: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in points:
        ro = [] if p.get("RW", True) else ["ro"]
        if p["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec", *p.get("Options", [])]
            if not any(o.startswith("size=") for o in opts):
                opts.append("size=65536k")
            if "exec" in opts:
                opts = [o for o in opts if o not in ("noexec", "exec")]
            out.append(
                {
                    "destination": p["Destination"],
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": opts + ro,
                }
            )
        else:
            prop = p.get("Propagation") or "rprivate"
            out.append(
                {
                    "destination": p["Destination"],
                    "type": "bind",
                    "source": p["Source"],
                    "options": ["rbind", prop, *ro],
                }
            )
    return out


def copy_image_content(rootfs: str, points: Iterable[Mapping[str, Any]]) -> None:
    """Docker copies what the image has at a volume's path into an empty volume, once.

    Both sides are hostile. The image's tree is read through fds, symlinks
    resolved inside the root at the start and copied as links below it. The
    volume may be mounted by a running container that changes it while we
    copy (swaps a directory we just made for a symlink to a host directory):
    every entry is made relative to a directory fd, with O_EXCL and
    O_NOFOLLOW, and metadata set through fds, so nothing lands outside the
    volume; what that container put in the way is left alone.
    """
    from portique.rootpath import open_in_root

    for p in points:
        if p["Type"] != "volume" or p.get("NoCopy"):
            continue
        try:
            dst = os.open(p["Source"], _DIR_NOFOLLOW)
        except OSError:
            continue
        try:
            if os.listdir(dst):
                continue
            rfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                src = open_in_root(rfd, p["Destination"], flags=_DIR_NOFOLLOW & ~os.O_NOFOLLOW)
            except OSError:
                continue  # nothing there, or not a directory
            finally:
                os.close(rfd)
            try:
                _copy_tree(src, dst)
                _copy_meta(os.fstat(src), dst)
            finally:
                os.close(src)
        finally:
            os.close(dst)


class _Moved(Exception):
    """A directory of the volume moved while we copied into it."""


def _copy_tree(src: int, dst: int) -> None:
    """Copy the entries of directory `src` into directory `dst` (both fds, kept open).

    One fd per side at a time: down by name, up by "..", checked to be the
    directory we came from, so neither a deep image tree (no recursion) nor a
    directory moved by another container (the copy stops) takes us elsewhere.
    """
    s, d = os.dup(src), os.dup(dst)
    # per level: names left to copy, and the identity of that level on each side
    stack = [(os.listdir(s), _identity(s), _identity(d))]
    try:
        while stack:
            names = stack[-1][0]
            if not names:
                stack.pop()
                if stack:
                    _copy_meta(os.fstat(s), d)
                    s = _up(s, stack[-1][1])
                    d = _up(d, stack[-1][2])
                continue
            name = names.pop()
            st = os.stat(name, dir_fd=s, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                _copy_leaf(s, d, name, st)
                continue
            try:
                os.mkdir(name, 0o700, dir_fd=d)
                sub_d = os.open(name, _DIR_NOFOLLOW, dir_fd=d)
            except OSError:
                continue  # something of the other container's is there: not ours
            sub_s = os.open(name, _DIR_NOFOLLOW, dir_fd=s)
            os.close(s)
            os.close(d)
            s, d = sub_s, sub_d
            stack.append((os.listdir(s), _identity(s), _identity(d)))
    except _Moved:
        pass  # the other container rearranged the volume: the copy ends there
    finally:
        os.close(s)
        os.close(d)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _up(fd: int, expected: tuple[int, int]) -> int:
    parent = os.open("..", _DIR_NOFOLLOW, dir_fd=fd)
    os.close(fd)
    if _identity(parent) != expected:
        os.close(parent)
        raise _Moved
    return parent


def _copy_meta(st: os.stat_result, fd: int) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_leaf(s: int, d: int, name: str, st: os.stat_result) -> None:
    """One non-directory: a file's data, a symlink as a link, a device node or FIFO
    as a node (never opened: a block device in an image must not have the
    host's disk read into the volume). Sockets are skipped."""
    mode = st.st_mode
    try:
        if stat.S_ISREG(mode):
            fin = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=s
            )
            try:
                if not stat.S_ISREG(os.fstat(fin).st_mode):
                    return
                out = os.open(
                    name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=d,
                )
                try:
                    _copy_data(fin, out)
                    _copy_meta(st, out)
                finally:
                    os.close(out)
            finally:
                os.close(fin)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=s), name, dir_fd=d)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=d, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=d, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=d)
            # Through an O_PATH fd of the node we made, checked: chmod(2) by
            # name would follow a symlink swapped in meanwhile.
            node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d)
            try:
                made = os.fstat(node)
                if stat.S_IFMT(made.st_mode) == stat.S_IFMT(mode) and made.st_rdev == st.st_rdev:
                    os.chown(f"/proc/self/fd/{node}", st.st_uid, st.st_gid)
                    os.chmod(f"/proc/self/fd/{node}", stat.S_IMODE(mode))
            finally:
                os.close(node)
    except FileExistsError:
        pass  # the other container put something at that name: left alone


def _copy_data(fin: int, out: int) -> None:
    size = os.fstat(fin).st_size
    offset = 0
    while offset < size:
        sent = os.sendfile(out, fin, offset, min(size - offset, 1 << 30))
        if sent == 0:
            break
        offset += sent
