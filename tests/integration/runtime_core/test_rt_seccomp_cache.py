"""The compiled-filter cache (runtime/seccomp_cache.py) with real containers:
an entry is written by the first start and used by the next; a tampered
entry is refused, the container still gets the profile's filter, and the
entry is rewritten with the right program."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from portique.oci.seccomp import parse_seccomp
from portique.runtime import Runtime
from portique.runtime.seccomp_cache import (
    MAGIC,
    cache_key,
    decode_entry,
    encode_entry,
    export_program,
)
from support.rt_bundle import make_config
from support.rt_run import run_container

SIGSYS_EXIT = 128 + 31
# The profile under test kills whatever calls getcwd: busybox's `pwd` does.
PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}],
}
# A program that allows everything, shaped like libseccomp's (it loads the
# architecture first): what a tampered cache would like the kernel to load.
ALLOW_ALL = struct.pack("<HBBI", 0x20, 0, 0, 4) + struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)


def _pwd(rt: Runtime, tmp: Path, rootfs: Path, name: str) -> int:
    cfg = make_config(["pwd"])
    cfg["process"]["noNewPrivileges"] = True
    cfg["linux"]["seccomp"] = PROFILE
    (tmp / name).mkdir()
    code, _ = run_container(rt, tmp / name, rootfs, cfg)
    return code


def _entry(rt: Runtime) -> Path:
    return rt.seccomp_cache / f"{cache_key(parse_seccomp(PROFILE)).hex()}.bpf"


@pytest.mark.timeout(120)
def test_first_start_writes_the_entry_and_the_next_uses_it(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path
) -> None:
    assert _pwd(rt, tmp_path, busybox_rootfs, "a") == SIGSYS_EXIT
    entry = _entry(rt)
    key = cache_key(parse_seccomp(PROFILE))
    program = decode_entry(entry.read_bytes(), key)
    assert program == export_program(parse_seccomp(PROFILE))
    st = entry.stat()
    assert st.st_mode & 0o777 == 0o600
    assert rt.seccomp_cache.stat().st_mode & 0o777 == 0o700
    # The second start reads it (the file is not replaced: same inode).
    assert _pwd(rt, tmp_path, busybox_rootfs, "b") == SIGSYS_EXIT
    assert entry.stat().st_ino == st.st_ino


def _tamper_program(entry: Path) -> None:
    """Swap in an allow-all program, keeping the header (its digest is now stale)."""
    data = entry.read_bytes()
    head = len(MAGIC) + 32 + 32 + 4
    program = ALLOW_ALL * ((len(data) - head) // len(ALLOW_ALL))
    program += data[head + len(program) :]
    entry.write_bytes(data[:head] + program)


def _tamper_rehashed_writable(entry: Path) -> None:
    """A well-formed entry with the right key and digest, but group/world-writable."""
    key = cache_key(parse_seccomp(PROFILE))
    entry.write_bytes(encode_entry(key, ALLOW_ALL))
    os.chmod(entry, 0o666)


def _tamper_symlink(entry: Path) -> None:
    """The entry a symlink to a well-formed allow-all entry elsewhere."""
    key = cache_key(parse_seccomp(PROFILE))
    other = entry.with_name("elsewhere")
    other.write_bytes(encode_entry(key, ALLOW_ALL))
    os.chmod(other, 0o600)
    entry.unlink()
    entry.symlink_to(other)


def _tamper_truncate(entry: Path) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) - 13])


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "tamper",
    [_tamper_program, _tamper_rehashed_writable, _tamper_symlink, _tamper_truncate],
    ids=["program-swapped", "writable-by-others", "symlink", "truncated"],
)
def test_a_tampered_entry_is_refused_and_the_filter_still_applies(
    rt: Runtime, tmp_path: Path, busybox_rootfs: Path, tamper: Any
) -> None:
    assert _pwd(rt, tmp_path, busybox_rootfs, "a") == SIGSYS_EXIT
    entry = _entry(rt)
    tamper(entry)
    # The container still runs under the profile: getcwd kills it.
    assert _pwd(rt, tmp_path, busybox_rootfs, "b") == SIGSYS_EXIT
    # ... and the entry was rewritten as a regular file with the compiled program.
    key = cache_key(parse_seccomp(PROFILE))
    assert not entry.is_symlink()
    assert entry.stat().st_mode & 0o777 == 0o600
    assert decode_entry(entry.read_bytes(), key) == export_program(parse_seccomp(PROFILE))
