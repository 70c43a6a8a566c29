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
import shutil
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portique.engine import db
from portique.engine import filters as flt
from portique.engine import options as opt
from portique.errors import Conflict, InvalidArgument, NoSuchObject

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
    vol, _created = create_volume(eng, name, labels=labels, driver=driver, options=options)
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
                shutil.rmtree(base / entry, ignore_errors=True)
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
    shutil.rmtree(eng.volumes_dir / name, ignore_errors=True)


def prune_volumes(eng: Engine, *, all_volumes: bool = False) -> list[str]:
    """Unused volumes: anonymous ones only, unless `all_volumes` (Docker 23+ semantics)."""
    eng.recover()  # a removal cut short may still hold anonymous volumes
    removed = []
    for vol in db.list_volumes(eng.db):
        if not (vol.anonymous or all_volumes):
            continue
        try:
            remove_volume(eng, vol.name)
        except Conflict:
            continue
        removed.append(vol.name)
    return removed


def volume_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


# -------------------------------------------------------------- mount plans


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
    """Docker copies what the image has at a volume's path into an empty volume, once."""
    from portique.rootpath import resolve_in_root

    for p in points:
        if p["Type"] != "volume" or p.get("NoCopy"):
            continue
        dest = Path(p["Source"])
        try:
            if any(dest.iterdir()):
                continue
            src = resolve_in_root(rootfs, p["Destination"])
        except OSError:
            continue
        if not os.path.isdir(src) or os.path.islink(src):
            continue
        # Symlinks are copied as links (never followed), so an image cannot
        # make us copy host files into the volume; device nodes and fifos as
        # nodes, never opened (a block device node in an image would have
        # had the host's disk read into the volume).
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True, copy_function=_copy_node)
        st = os.lstat(src)
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, st.st_mode & 0o7777)


def _copy_node(src: str, dst: str) -> None:
    """copytree's copy of one non-directory: data only from a regular file."""
    st = os.lstat(src)
    if stat.S_ISREG(st.st_mode):
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return  # swapped under us: never read a device
            with open(fd, "rb", closefd=False) as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        finally:
            os.close(fd)
        shutil.copystat(src, dst, follow_symlinks=False)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        os.mknod(dst, st.st_mode, st.st_rdev)
    else:
        return  # sockets: nothing to copy
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
