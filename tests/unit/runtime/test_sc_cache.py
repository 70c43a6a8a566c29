"""The compiled-filter cache's reading and writing, without loading anything."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from portique.oci.seccomp import LinuxSeccomp, parse_seccomp
from portique.runtime.seccomp import SeccompFilter
from portique.runtime.seccomp_cache import (
    MAGIC,
    MAX_FILE,
    RawFilter,
    cache_key,
    compiled,
    decode_entry,
    encode_entry,
    export_program,
    read_entry,
)
from portique.runtime.seccomp_default import default_profile

LOAD_ARCH = struct.pack("<HBBI", 0x20, 0, 0, 4)
RET_ALLOW = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)


def _spec() -> LinuxSeccomp:
    return parse_seccomp(default_profile())


def test_key_follows_the_profile() -> None:
    assert cache_key(_spec()) == cache_key(_spec())
    other = parse_seccomp(default_profile({"CAP_SYS_ADMIN"}))
    assert cache_key(other) != cache_key(_spec())
    assert len(cache_key(_spec())) == 32


def test_round_trip() -> None:
    key = cache_key(_spec())
    program = export_program(_spec())
    assert len(program) % 8 == 0
    assert program.startswith(LOAD_ARCH)
    assert decode_entry(encode_entry(key, program), key) == program


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def test_every_kind_of_damage_is_refused() -> None:
    key = cache_key(_spec())
    program = export_program(_spec())
    good = encode_entry(key, program)
    head = len(good) - len(program)
    damaged = {
        "magic": _flip(good, 0),
        "key": _flip(good, len(MAGIC) + 3),
        "digest": _flip(good, len(MAGIC) + 40),
        "length": _flip(good, head - 2),
        "program byte": _flip(good, head + len(program) // 2),
        "truncated": good[:-8],
        "extended": good + RET_ALLOW,
        "header only": good[:head],
        "empty": b"",
        "other key": encode_entry(bytes(32), program),
        "not whole instructions": encode_entry(key, program + b"\0\0\0"),
        "no arch check first": encode_entry(key, RET_ALLOW + program),
        "too long": encode_entry(key, LOAD_ARCH + RET_ALLOW * 4096),
    }
    for what, data in damaged.items():
        assert decode_entry(data, key) is None, what
    assert len(damaged["too long"]) > MAX_FILE


def test_a_miss_compiles_and_writes_then_hits(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = compiled(_spec(), cache)
    assert isinstance(first, RawFilter)
    (entry,) = cache.iterdir()
    assert entry.name == cache_key(_spec()).hex() + ".bpf"
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    inode = entry.stat().st_ino
    second = compiled(_spec(), cache)
    assert second == first
    assert entry.stat().st_ino == inode


def test_a_damaged_entry_is_replaced_by_the_compiled_program(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = compiled(_spec(), cache)
    assert isinstance(good, RawFilter)
    (entry,) = cache.iterdir()
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) - len(good.program)] + LOAD_ARCH + RET_ALLOW)
    again = compiled(_spec(), cache)
    assert again == good
    assert read_entry(cache, cache_key(_spec())) == good.program


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_an_entry_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    cache = tmp_path / "cache"
    compiled(_spec(), cache)
    (entry,) = cache.iterdir()
    os.chmod(entry, mode)
    assert read_entry(cache, cache_key(_spec())) is None


def test_a_directory_others_may_write_or_a_symlinked_one_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compiled(_spec(), cache)
    os.chmod(cache, 0o777)
    assert read_entry(cache, cache_key(_spec())) is None
    os.chmod(cache, 0o700)
    link = tmp_path / "link"
    link.symlink_to(cache)
    assert read_entry(link, cache_key(_spec())) is None
    assert read_entry(cache, cache_key(_spec())) is not None


def test_an_oversized_or_special_entry_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compiled(_spec(), cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(entry.read_bytes() + bytes(MAX_FILE))
    assert read_entry(cache, cache_key(_spec())) is None
    entry.unlink()
    os.mkfifo(entry, 0o600)  # a fifo would block a reader that opened it blocking
    assert read_entry(cache, cache_key(_spec())) is None


def test_profiles_with_flags_and_no_cache_dir_are_compiled_every_time(tmp_path: Path) -> None:
    flagged = parse_seccomp({**default_profile(), "flags": ["SECCOMP_FILTER_FLAG_LOG"]})
    assert isinstance(compiled(flagged, tmp_path / "cache"), SeccompFilter)
    assert not (tmp_path / "cache").exists()
    assert isinstance(compiled(_spec(), None), SeccompFilter)


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import portique.runtime.seccomp_cache as sc

    monkeypatch.setattr(sc, "MAX_ENTRIES", 2)
    cache = tmp_path / "cache"
    profiles = [
        parse_seccomp(default_profile(caps))
        for caps in ({"CAP_SYS_ADMIN"}, {"CAP_SYS_TIME"}, {"CAP_SYS_PTRACE"})
    ]
    for spec in profiles:
        assert isinstance(compiled(spec, cache), RawFilter)
    assert len(list(cache.iterdir())) == 2
    # The third still gets its filter, compiled, just not kept.
    assert read_entry(cache, cache_key(profiles[2])) is None
