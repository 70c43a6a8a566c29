from __future__ import annotations

from pathlib import Path

import pytest

from portique.engine import attach, copy, names, stream, userdb
from portique.errors import InvalidArgument


def test_random_names() -> None:
    for i in range(50):
        n = names.random_name(i)
        adj, _, rest = n.partition("_")
        assert adj in names.ADJECTIVES
        assert rest.rstrip("0123456789") in names.NOUNS


def test_frames_roundtrip() -> None:
    data = (
        stream.frame(stream.STDOUT, b"abc")
        + stream.frame(stream.EXIT, b"0")
        + stream.frame(stream.STDIN, b"x")[:3]
    )
    frames, rest = stream.split_frames(data)
    assert frames == [(stream.STDOUT, b"abc"), (stream.EXIT, b"0")]
    assert len(rest) == 3
    with pytest.raises(ValueError, match="too large"):
        stream.split_frames(bytes([1]) + (stream.MAX_FRAME + 1).to_bytes(4, "big"))


def test_detach_keys() -> None:
    assert attach.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert attach.parse_detach_keys("a,ctrl-z") == b"a\x1a"
    with pytest.raises(InvalidArgument):
        attach.parse_detach_keys("ctrl-pp")
    data, matched, detached = attach.scan_detach(b"ab\x10", b"\x10\x11", 0)
    assert (data, matched, detached) == (b"ab", 1, False)
    data, matched, detached = attach.scan_detach(b"\x11", b"\x10\x11", matched)
    assert detached
    data, matched, detached = attach.scan_detach(b"\x10x", b"\x10\x11", 0)
    assert (data, detached) == (b"\x10x", False)


PASSWD = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\nbroken line\n"
GROUP = "root:x:0:\nweb:x:1000:\nwheel:x:10:web,other\naudio:x:29:web\n"


def test_resolve_user() -> None:
    p, g = userdb.parse_passwd(PASSWD), userdb.parse_group(GROUP)
    # The primary group comes first among the supplementary ones, as in dockerd's spec.
    assert userdb.resolve_user("web", p, g) == userdb.ResolvedUser(
        1000, 1000, (1000, 10, 29), "/home/web"
    )
    assert userdb.resolve_user("web:wheel", p, g) == userdb.ResolvedUser(
        1000, 10, (10,), "/home/web"
    )
    assert userdb.resolve_user("4242", p, g) == userdb.ResolvedUser(4242, 0, (0,), "/")
    assert userdb.resolve_user("0:29", p, g).gid == 29
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        userdb.resolve_user("nobody", p, g)
    with pytest.raises(InvalidArgument, match="unable to find group"):
        userdb.resolve_user("web:nogroup", p, g)


def test_user_lookup_does_not_follow_symlinks_out(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text("evil:x:7:7::/:/bin/sh\n")
    # An absolute symlink is resolved inside the root: it must not reach `outside`.
    (root / "etc/passwd").symlink_to(str(outside))
    with pytest.raises(InvalidArgument):
        userdb.lookup(str(root), "evil")
    (root / "etc/passwd").unlink()
    (root / "etc/passwd").write_text(PASSWD)
    assert userdb.lookup(str(root), "web").uid == 1000


def test_cp_arg_parsing() -> None:
    assert copy.parse_cp_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert copy.parse_cp_arg("/tmp/a:b") == ("", "/tmp/a:b")
    assert copy.parse_cp_arg("./a:b") == ("", "./a:b")
    assert copy.parse_cp_arg("dir/a:b") == ("", "dir/a:b")


def test_copy_in_never_writes_through_container_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    host_secret = tmp_path / "secret"
    host_secret.write_text("untouched")
    (root / "data/evil").symlink_to(str(host_secret))
    (root / "data/up").symlink_to("../../..")
    src = tmp_path / "payload"
    src.write_text("payload")
    copy.copy_in(str(root), str(src), "/data/evil")
    assert host_secret.read_text() == "untouched"
    assert (root / "data/evil").read_text() == "payload"
    assert not (root / "data/evil").is_symlink()
    # "up" resolves inside the root (.. stops at /), so this lands in the root's /tmp.
    (root / "tmp").mkdir()
    copy.copy_in(str(root), str(src), "/data/up/tmp/")
    assert (root / "tmp/payload").read_text() == "payload"


def test_copy_out_keeps_symlinks_as_links(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "d/sub").mkdir(parents=True)
    (root / "d/f").write_text("f")
    (root / "d/sub/g").write_text("g")
    (root / "d/l").symlink_to("/etc/passwd")
    dest = tmp_path / "out"
    copy.copy_out(str(root), "/d", str(dest))
    assert (dest / "f").read_text() == "f"
    assert (dest / "sub/g").read_text() == "g"
    assert (dest / "l").is_symlink()
    assert str((dest / "l").readlink()) == "/etc/passwd"
    dest2 = tmp_path / "into"
    dest2.mkdir()
    copy.copy_out(str(root), "/d/f", str(dest2))
    assert (dest2 / "f").read_text() == "f"
    with pytest.raises(Exception, match="could not find"):
        copy.copy_out(str(root), "/nope", str(dest2))


def test_export_tar(tmp_path: Path) -> None:
    import io
    import tarfile

    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin/tool").write_text("x")
    (root / "link").symlink_to("/bin/tool")
    buf = io.BytesIO()
    copy.export(str(root), buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin"].isdir()
    assert members["bin/tool"].isfile()
    assert members["link"].issym()
    assert members["link"].linkname == "/bin/tool"
