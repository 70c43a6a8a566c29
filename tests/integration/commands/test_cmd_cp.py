"""`cp -` both ways and `cp -a` (issue 13, item 10), with Docker's owners: a
copy into a container keeps the files' uids and gids (with -a and a USER:
that user's), `cp -a` out of one keeps them on the host; a tar put into a
container cannot write outside the destination."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import PORTIQUE, Portique


@pytest.fixture
def box(pq: Portique) -> Iterator[str]:
    cid = pq.ok("run", "-d", "busybox", "sleep", "1000").strip()
    yield cid
    pq.ok("rm", "-f", cid)


def _tar(*members: tuple[str, bytes | None, str, int]) -> bytes:
    """(name, data or None for a dir, symlink target or "", uid) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link, uid in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = uid, uid + 1
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _put(pq: Portique, data: bytes, dest: str, *flags: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PORTIQUE, "cp", *flags, "-", dest], input=data, env=pq.env, capture_output=True,
        timeout=60,
    )  # fmt: skip


def test_cp_tar_out_on_stdout(pq: Portique, box: str) -> None:
    pq.ok("exec", box, "sh", "-c", "mkdir -p /d/sub && echo a > /d/sub/f && chown -R 7:8 /d")
    out = subprocess.run(
        [PORTIQUE, "cp", f"{box}:/d", "-"], env=pq.env, capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        got = {(m.name.rstrip("/"), m.uid, m.gid) for m in tar.getmembers()}
        f = tar.extractfile("d/sub/f")
        assert f is not None
        assert f.read() == b"a\n"
    assert got == {("d", 7, 8), ("d/sub", 7, 8), ("d/sub/f", 7, 8)}
    # -L follows a link at the path (inside the container's root).
    pq.ok("exec", box, "ln", "-s", "/d/sub/f", "/link")
    out = subprocess.run(
        [PORTIQUE, "cp", "-L", f"{box}:/link", "-"], env=pq.env, capture_output=True, timeout=60
    )
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        assert [(m.name, m.isfile()) for m in tar.getmembers()] == [("link", True)]


def test_cp_tar_in_from_stdin_keeps_owners(pq: Portique, box: str) -> None:
    data = _tar(("dir", None, "", 4321), ("dir/f", b"in\n", "", 4321), ("l", None, "dir/f", 4321))
    r = _put(pq, data, f"{box}:/tmp")
    assert r.returncode == 0, r.stderr
    got = pq.ok("exec", box, "sh", "-c", "stat -c '%n %u:%g %a' /tmp/dir /tmp/dir/f; cat /tmp/l")
    assert got == "/tmp/dir 4321:4322 755\n/tmp/dir/f 4321:4322 640\nin\n"
    missing = _put(pq, data, f"{box}:/nonexistent")
    assert missing.returncode == 1
    assert b"Could not find the file /nonexistent in container" in missing.stderr
    not_dir = _put(pq, data, f"{box}:/etc/passwd")
    assert (not_dir.returncode, not_dir.stderr) == (
        1,
        b"portique: extraction point is not a directory\n",
    )


def test_cp_a_keeps_owners_both_ways(pq: Portique, box: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("x\n")
    for p in (src, src / "sub", src / "sub" / "f"):
        os.chown(p, 1234, 2345)
    pq.ok("cp", str(src), f"{box}:/plain")
    pq.ok("cp", "-a", str(src), f"{box}:/archived")
    got = pq.ok("exec", box, "sh", "-c", "stat -c '%u:%g' /plain/sub/f /archived/sub/f /archived")
    assert got.split() == ["1234:2345"] * 3  # Docker keeps them either way
    pq.ok("exec", box, "chown", "-R", "7:8", "/archived")
    pq.ok("cp", f"{box}:/archived", str(tmp_path / "out-plain"))
    pq.ok("cp", "-a", f"{box}:/archived", str(tmp_path / "out-archived"))
    plain = tmp_path / "out-plain" / "sub" / "f"
    kept = tmp_path / "out-archived" / "sub" / "f"
    assert (plain.stat().st_uid, plain.stat().st_gid) == (os.getuid(), os.getgid())
    assert (kept.stat().st_uid, kept.stat().st_gid) == (7, 8)
    assert (kept.parent.stat().st_uid, kept.parent.stat().st_gid) == (7, 8)


def test_cp_a_into_a_container_with_a_user(pq: Portique, tmp_path: Path) -> None:
    cid = pq.ok("run", "-d", "--user", "daemon", "busybox", "sleep", "1000").strip()
    try:
        f = tmp_path / "f"
        f.write_text("x\n")
        os.chown(f, 1234, 2345)
        pq.ok("cp", str(f), f"{cid}:/tmp/plain")
        pq.ok("cp", "-a", str(f), f"{cid}:/tmp/archived")
        r = _put(pq, _tar(("t", b"t\n", "", 4321)), f"{cid}:/tmp", "-a")
        assert r.returncode == 0, r.stderr
        got = pq.ok("exec", cid, "stat", "-c", "%u:%g", "/tmp/plain", "/tmp/archived", "/tmp/t")
        assert got.split() == ["1234:2345", "1:1", "1:1"]  # daemon is 1:1 in the image
    finally:
        pq.ok("rm", "-f", cid)


@pytest.mark.parametrize(
    "members",
    [
        # a symlink out of the destination, then a file through it
        [("x", None, "{host}", 0), ("x/pwned", b"p\n", "", 0)],
        [("../../../../../../..{host}/pwned", b"p\n", "", 0)],
        [("{host}/pwned", b"p\n", "", 0)],
    ],
    ids=["through-symlink", "dot-dot", "absolute"],
)
def test_cp_tar_in_cannot_write_outside(
    pq: Portique, box: str, tmp_path: Path, members: list[tuple[str, bytes | None, str, int]]
) -> None:
    host = tmp_path / "host-dir"
    host.mkdir()
    filled = [(n.format(host=host), d, link.format(host=host), u) for n, d, link, u in members]
    r = _put(pq, _tar(*filled), f"{box}:/tmp")
    assert r.returncode == 1, r.stderr
    assert r.stderr.count(b"\n") == 1, r.stderr
    assert not (host / "pwned").exists()
    listing = pq.ok("exec", box, "find", "/tmp", "-name", "pwned")
    assert listing == ""
