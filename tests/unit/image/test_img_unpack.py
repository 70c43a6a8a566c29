"""Layer unpacking: kinds of entries, metadata, compression sniffing, hostile tars."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.image.snapshots import remove_tree
from portique.image.unpack import (
    Compression,
    InvalidLayer,
    UnpackResult,
    clean_name,
    sniff,
    unpack,
)
from support.imgstore_tars import MTIME, RawTar, compress, sha256


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    d = tmp_path / "snap"
    d.mkdir()
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    yield d, fd
    os.close(fd)
    # rm(1) removes trees deeper than Python's recursion limit, which pytest's
    # own tmp_path clean-up cannot (and then fails the whole run).
    subprocess.run(["rm", "-rf", str(d)], check=True)


def run(dest: tuple[Path, int], tar: bytes, kind: str = "") -> UnpackResult:
    return unpack(io.BytesIO(compress(tar, kind)), dest[1])


@pytest.mark.parametrize("kind", ["", "gzip", "zstd"])
def test_regular_files_dirs_and_diff_id(dest: tuple[Path, int], kind: str) -> None:
    tar = (
        RawTar().dir("etc").file("etc/hosts", b"127.0.0.1 localhost\n").file("a/b/c", b"x").bytes()
    )
    result = run(dest, tar, kind)
    root = dest[0]
    assert (root / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    # Missing parents are created (0755) as Docker does.
    assert (root / "a/b/c").read_bytes() == b"x"
    assert stat.S_IMODE((root / "a/b").stat().st_mode) == 0o755
    assert result.diff_id == sha256(tar)
    assert result.size == 21
    assert result.compression == (Compression(kind) if kind else Compression.NONE)


def test_media_type_is_not_trusted_sniffing_is() -> None:
    assert sniff(b"\x1f\x8b\x08\x00") is Compression.GZIP
    assert sniff(b"\x28\xb5\x2f\xfd") is Compression.ZSTD
    assert sniff(b"etc/\0\0\0") is Compression.NONE
    with pytest.raises(InvalidLayer, match="bzip2"):
        sniff(b"BZh91AY")
    with pytest.raises(InvalidLayer, match="xz"):
        sniff(b"\xfd7zXZ\x00\x00")


def test_modes_including_setuid_sticky_and_mtimes(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .dir("tmp", mode=0o1777, mtime=1_500_000_000)
        .file("bin/su", b"#!", mode=0o4755, mtime=1_400_000_000)
        .file("bin/wall", b"#!", mode=0o2755)
        .file("tmp/f", b"", mode=0o600)
        .dir("ro", mode=0o555)
        .file("ro/inside", b"ok")
        .bytes()
    )
    run(dest, tar)
    root = dest[0]
    assert stat.S_IMODE((root / "bin/su").stat().st_mode) == 0o4755
    assert stat.S_IMODE((root / "bin/wall").stat().st_mode) == 0o2755
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "tmp/f").stat().st_mode) == 0o600
    # A read-only directory still got its children (mode applied at the end).
    assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
    assert (root / "ro/inside").read_bytes() == b"ok"
    assert (root / "bin/su").stat().st_mtime == 1_400_000_000
    # Directory mtimes survive the creation of their children.
    assert (root / "tmp").stat().st_mtime == 1_500_000_000
    os.chmod(root / "ro", 0o755)  # let tmp_path clean up when not root


def test_symlinks_are_kept_verbatim_and_never_followed(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .symlink("abs", "/etc/passwd")
        .symlink("rel", "../../../../etc/shadow")
        .symlink("dangling", "nowhere", mtime=1_300_000_000)
        .bytes()
    )
    run(dest, tar)
    root = dest[0]
    assert os.readlink(root / "abs") == "/etc/passwd"
    assert os.readlink(root / "rel") == "../../../../etc/shadow"
    assert os.lstat(root / "dangling").st_mtime == 1_300_000_000


def test_hard_links_within_the_layer(dest: tuple[Path, int]) -> None:
    tar = RawTar().file("bin/busybox", b"BB", mode=0o755).hardlink("bin/sh", "bin/busybox").bytes()
    run(dest, tar)
    root = dest[0]
    a, b = os.stat(root / "bin/busybox"), os.stat(root / "bin/sh")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)


def test_user_xattrs_kept_and_trusted_ones_dropped(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .file(
            "f",
            b"x",
            xattrs={
                "user.mime": b"text/plain",
                "trusted.overlay.redirect": b"/etc",
                "user.bin": b"\xff\x00",
            },
        )
        .dir("d", xattrs={"user.dir": b"yes"})
        .bytes()
    )
    try:
        os.setxattr(dest[0], "user.probe", b"1")
    except OSError:
        pytest.fail("tmp_path file system must support user xattrs for this test")
    run(dest, tar)
    root = dest[0]
    assert os.getxattr(root / "f", "user.mime") == b"text/plain"
    assert os.getxattr(root / "f", "user.bin") == b"\xff\x00"
    assert os.getxattr(root / "d", "user.dir") == b"yes"
    assert not any(n.startswith("trusted.") for n in os.listxattr(root / "f"))


def test_overlayfs_user_xattrs_from_a_layer_are_dropped(dest: tuple[Path, int]) -> None:
    # A rootless engine's overlay (userxattr) would obey them: an opaque flag
    # hiding lower files, a redirect (image/ovlxattr.py).
    tar = (
        RawTar()
        .dir("d", xattrs={"user.overlay.opaque": b"y", "user.keep": b"1"})
        .file(
            "f", b"x", xattrs={"user.overlay.redirect": b"/etc", "user.fuseoverlayfs.opaque": b"y"}
        )
        .bytes()
    )
    run(dest, tar)
    root = dest[0]
    assert os.listxattr(root / "d") == ["user.keep"]
    assert os.listxattr(root / "f") == []


def test_fifo(dest: tuple[Path, int]) -> None:
    run(dest, RawTar().fifo("run/pipe", mode=0o620).bytes())
    st = os.lstat(dest[0] / "run/pipe")
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o620


def test_later_entry_replaces_earlier(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .file("x", b"old")
        .file("x", b"new")
        .dir("d")
        .file("d/child", b"c")
        .file("d", b"now a file")
        .symlink("s", "a")
        .file("s", b"plain")
        .bytes()
    )
    run(dest, tar)
    root = dest[0]
    assert (root / "x").read_bytes() == b"new"
    assert (root / "d").read_bytes() == b"now a file"
    assert not (root / "s").is_symlink()
    assert (root / "s").read_bytes() == b"plain"


def test_leading_slash_and_dot_are_stripped(dest: tuple[Path, int]) -> None:
    run(dest, RawTar().dir("./").file("/etc/abs", b"1").file("./etc//dot", b"2").bytes())
    assert (dest[0] / "etc/abs").read_bytes() == b"1"
    assert (dest[0] / "etc/dot").read_bytes() == b"2"


def test_empty_layers(dest: tuple[Path, int]) -> None:
    empty_tar = RawTar().bytes()
    assert run(dest, empty_tar).diff_id == sha256(empty_tar)
    assert run(dest, b"").diff_id == sha256(b"")
    assert os.listdir(dest[0]) == []


def test_clean_name() -> None:
    assert clean_name("/a/./b//c/") == ("a", "b", "c")
    assert clean_name("./") == ()
    with pytest.raises(InvalidLayer, match=r"'\.\.'"):
        clean_name("a/../../b")
    assert clean_name("usr/lib/x.so") == ("usr", "lib", "x.so")
    with pytest.raises(InvalidLayer, match="too long"):
        clean_name("x" * 5000)
    with pytest.raises(InvalidLayer, match="too long"):
        clean_name("\U0001f600" * 1100)  # 1100 characters, 4400 bytes


# ---- hostile layers ------------------------------------------------------------

HOSTILE = {
    "dotdot": (RawTar().file("../escape", b"pwned"), "'..'"),
    "dotdot-deep": (RawTar().dir("a").file("a/../../escape", b"pwned"), "'..'"),
    "symlinked-parent": (
        RawTar().symlink("etc", "{outside}").file("etc/passwd", b"pwned"),
        "symlink or not a directory",
    ),
    "symlink-then-file-through-it": (
        RawTar().dir("d").symlink("d/link", "{outside}").file("d/link/x", b"pwned"),
        "symlink or not a directory",
    ),
    "dir-replaced-by-symlink": (
        RawTar().dir("d").file("d/a", b"1").symlink("d", "{outside}").file("d/b", b"pwned"),
        "symlink or not a directory",
    ),
    "hardlink-outside": (RawTar().hardlink("passwd", "../../../../etc/passwd"), "'..'"),
    "hardlink-absolute-missing": (RawTar().hardlink("passwd", "/etc/passwd"), "not in layer"),
    "hardlink-through-symlink": (
        RawTar().symlink("l", "{outside}").hardlink("h", "l/secret"),
        "symlink or not a directory",
    ),
    "hardlink-to-dir": (RawTar().dir("d").hardlink("h", "d"), "directory"),
    "file-through-file": (RawTar().file("f", b"1").file("f/x", b"2"), "not a directory"),
    "bad-whiteout": (RawTar().file(".wh...", b""), "bad whiteout"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer_is_refused_and_writes_nothing_outside(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    raw, why = HOSTILE[case]
    # Rebuild with the real outside path substituted into symlink targets.
    tar = RawTar()
    with tarfile.open(fileobj=io.BytesIO(raw.bytes())) as src:
        members = [(m, src.extractfile(m).read() if m.isreg() else b"") for m in src.getmembers()]  # type: ignore[union-attr]
    for m, data in members:
        tar.add(
            m.name,
            m.type,
            data=data,
            mode=m.mode,
            linkname=m.linkname.replace("{outside}", str(outside)),
        )
    snap = tmp_path / "snap"
    snap.mkdir()
    fd = os.open(snap, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(InvalidLayer, match=why) as info:
            unpack(io.BytesIO(tar.bytes()), fd)
    finally:
        os.close(fd)
    # The error names the entry, and nothing escaped.
    assert "entry" in str(info.value)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert not (tmp_path / "escape").exists()


def test_truncated_and_garbage_layers(dest: tuple[Path, int]) -> None:
    tar = RawTar().file("big", os.urandom(100_000)).bytes()
    with pytest.raises(InvalidLayer):
        run(dest, compress(tar, "gzip")[:5000])
    with pytest.raises(InvalidLayer):
        unpack(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"garbage" * 100), dest[1])
    with pytest.raises(InvalidLayer, match=r"truncated|invalid layer"):
        unpack(io.BytesIO(tar[:20_000]), dest[1])


def test_too_many_xattrs_refused(dest: tuple[Path, int]) -> None:
    xattrs = {f"user.x{i}": b"v" for i in range(200)}
    with pytest.raises(InvalidLayer, match="xattrs"):
        run(dest, RawTar().file("f", b"", xattrs=xattrs).bytes())


def test_mtime_float_and_default(dest: tuple[Path, int]) -> None:
    run(dest, RawTar().file("f", b"", mtime=MTIME + 0.5).bytes())
    assert os.stat(dest[0] / "f").st_mtime == pytest.approx(MTIME + 0.5)


def test_huge_pax_header_is_refused_before_it_is_read(dest: tuple[Path, int]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("f")
        ti.pax_headers = {"comment": "x" * (2 << 20)}
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(InvalidLayer, match=r"header extension of .* too large"):
        run(dest, buf.getvalue())


def test_sparse_files_are_refused(dest: tuple[Path, int]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("holes")
        ti.type = tarfile.GNUTYPE_SPARSE
        tf.addfile(ti)
    with pytest.raises(InvalidLayer, match="sparse"):
        run(dest, buf.getvalue())


def test_error_names_the_layer_entry(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .file("ok", b"1")
        .file("etc/x", b"2")
        .symlink("etc", "/")
        .file("etc/y", b"3")
        .bytes()
    )
    with pytest.raises(InvalidLayer, match=r"entry 'etc/y'"):
        run(dest, tar)


def test_nested_dir_replaced_by_file(dest: tuple[Path, int]) -> None:
    tar = (
        RawTar()
        .dir("a/x")
        .file("a/x/child", b"c")
        .file("a/x", b"file now")
        .file("a/y", b"y")
        .bytes()
    )
    run(dest, tar)
    assert (dest[0] / "a/x").read_bytes() == b"file now"
    assert (dest[0] / "a/y").read_bytes() == b"y"


def test_many_dirs_deep_paths_and_links_across_them(dest: tuple[Path, int]) -> None:
    tar = RawTar()
    for i in range(600):  # more directories than the fd cache holds
        tar.file(f"d{i:03}/sub/f", str(i).encode())
    for i in range(0, 600, 7):
        tar.hardlink(f"d{599 - i:03}/sub/link{i}", f"d{i:03}/sub/f")
    deep = "/".join(["n"] * 1500)  # deeper than Python's recursion limit
    tar.file(f"{deep}/leaf", b"deep")
    root = dest[0]
    try:
        run(dest, tar.bytes())
        assert (root / "d599/sub/link0").read_bytes() == b"0"
        assert os.stat(root / "d011/sub/link588").st_ino == os.stat(root / "d588/sub/f").st_ino
        assert (root / deep / "leaf").read_bytes() == b"deep"
        assert len(os.listdir("/proc/self/fd")) < 64  # every directory fd was closed
    finally:
        # Deeper than shutil.rmtree (so pytest's tmp cleanup, shared with
        # every other test run on the machine) can go: remove it here.
        remove_tree(root / "n")
    assert not (root / "n").exists()


def test_deep_directory_replaced_within_a_layer(dest: tuple[Path, int]) -> None:
    deep = "/".join(["n"] * 1200)
    tar = RawTar().file(f"top/{deep}/leaf", b"x").file("top", b"now a file").bytes()
    run(dest, tar)
    assert (dest[0] / "top").read_bytes() == b"now a file"


def test_symlink_replaces_earlier_entries_and_keeps_its_owner(dest: tuple[Path, int]) -> None:
    # A link is created first and its name cleared only when taken: a file, a
    # directory with children and another link of the same name all give way.
    tar = (
        RawTar()
        .file("f", b"old")
        .symlink("f", "target-f", mtime=1_300_000_000)
        .dir("d")
        .file("d/child", b"c")
        .symlink("d", "target-d")
        .symlink("l", "first")
        .symlink("l", "second")
        .symlink("owned", "x", uid=1234, gid=5678)
        .bytes()
    )
    run(dest, tar)
    root = dest[0]
    assert os.readlink(root / "f") == "target-f"
    assert os.lstat(root / "f").st_mtime == 1_300_000_000
    assert os.readlink(root / "d") == "target-d"
    assert os.readlink(root / "l") == "second"
    st = os.lstat(root / "owned")
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)
    else:  # unprivileged: links are the unpacker's own
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert (os.lstat(root / "l").st_uid, os.lstat(root / "l").st_gid) == (
        (0, 0) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    )
