"""Pure helpers of the runtime: mount options, PATH lookup, the sync messages, /proc parsing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from portique.linux import mount as m
from portique.linux import proc
from portique.linux.caps import CAP_NUMBERS, to_mask
from portique.runtime import sync
from portique.runtime.mountplan import parse_options
from portique.runtime.process import ExecError, find_executable


def test_parse_options() -> None:
    o = parse_options(
        ["rbind", "ro", "nosuid", "nodev", "noexec", "relatime", "rprivate", "mode=755", "size=1m"]
    )
    assert (
        o.flags
        == m.MS_BIND
        | m.MS_REC
        | m.MS_RDONLY
        | m.MS_NOSUID
        | m.MS_NODEV
        | m.MS_NOEXEC
        | m.MS_RELATIME
    )
    assert o.propagation == (m.MS_PRIVATE | m.MS_REC,)
    assert o.data == "mode=755,size=1m"
    assert o.is_bind
    # Later options win; clearing options clear.
    assert parse_options(["ro", "rw"]).flags == 0
    assert parse_options(["nosuid", "suid", "nodev"]).flags == m.MS_NODEV
    assert parse_options(["tmpcopyup", "x-foo=1", "newinstance"]).data == "newinstance"
    assert not parse_options([]).is_bind


def _exe(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_find_executable_in_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _exe(a / "tool", 0o644)  # found first but not executable
    _exe(b / "tool")
    env = {"PATH": f"{a}:{b}"}
    assert find_executable("tool", env) == str(b / "tool")
    with pytest.raises(ExecError) as e:
        find_executable("missing", env)
    assert e.value.error == "notfound"
    assert e.value.message == 'exec: "missing": executable file not found in $PATH'
    os.unlink(b / "tool")
    with pytest.raises(ExecError) as e:
        find_executable("tool", env)
    assert e.value.error == "notexec"


def test_find_executable_with_slash(tmp_path: Path) -> None:
    tool = _exe(tmp_path / "t")
    assert find_executable(str(tool), {}) == str(tool)
    with pytest.raises(ExecError) as e:
        find_executable(str(tmp_path / "nope"), {})
    assert e.value.error == "notfound"
    with pytest.raises(ExecError) as e:
        find_executable(str(tmp_path), {})
    assert e.value.error == "notexec"
    assert "is a directory" in e.value.message


def test_sync_messages_round_trip() -> None:
    a, b = sync.Channel.pair()
    try:
        for msg in (
            sync.Go(),
            sync.MapIds(5),
            sync.InitPid(7),
            sync.Ready(),
            sync.Failed("notfound", "x"),
        ):
            a.send(msg)
            got, fds = b.recv(5)
            assert got == msg
            assert fds == []
        r, w = os.pipe()
        a.send(sync.Pty(), (r,))
        got, fds = b.recv(5)
        assert isinstance(got, sync.Pty)
        assert len(fds) == 1
        assert stat.S_ISFIFO(os.fstat(fds[0]).st_mode)
        for fd in (r, w, *fds):
            os.close(fd)
        a.send(sync.Failed("error", "boom"))
        with pytest.raises(sync.ProtocolError, match="boom"):
            b.expect(sync.Ready, 5)
        a.close()
        assert b.recv(5) == (None, [])
    finally:
        b.close()


def test_sync_rejects_garbage() -> None:
    a, b = sync.Channel.pair()
    try:
        a.sock.send(b'{"kind": "nope"}')
        with pytest.raises(sync.ProtocolError):
            b.recv(5)
        a.sock.send(b"not json")
        with pytest.raises(sync.ProtocolError):
            b.recv(5)
    finally:
        a.close()
        b.close()


def test_proc_stat_parsing(tmp_path: Path) -> None:
    d = tmp_path / "123"
    d.mkdir()
    # A command name with spaces and parentheses must not shift the fields.
    fields = ["S"] + [str(i) for i in range(4, 52)]
    (d / "stat").write_text("123 (a) b) c) " + " ".join(fields) + "\n")
    assert proc.start_time(123, str(tmp_path)) == 22
    assert proc.is_alive(123, 22, str(tmp_path))
    assert not proc.is_alive(123, 23, str(tmp_path))
    (d / "stat").write_text("123 (z) Z " + " ".join(fields[1:]) + "\n")
    assert not proc.is_alive(123, None, str(tmp_path))
    assert proc.start_time(999, str(tmp_path)) is None
    assert proc.start_time(os.getpid()) is not None


def test_capability_names() -> None:
    assert CAP_NUMBERS["CAP_CHOWN"] == 0
    assert CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert to_mask(["CAP_KILL", "CAP_NET_RAW"]) == (1 << 5) | (1 << 13)


def test_proc_stat_parse_and_malformed() -> None:
    st = proc.parse_stat(b"7 (a) (b) ) S 3 " + b" ".join(b"%d" % i for i in range(5, 60)) + b"\n")
    assert (st.state, st.ppid, st.start_time) == ("S", 3, 22)
    assert st.is_alive
    assert not proc.parse_stat(b"7 (z) Z 1 " + b"0 " * 30).is_alive
    with pytest.raises(ValueError, match="malformed /proc/<pid>/stat"):
        proc.parse_stat(b"7 (short) S 1 2")
