"""The v2 device program, run on a tiny interpreter of the opcodes it uses."""

from __future__ import annotations

import struct

import pytest

from portique.oci.resources import DeviceRule, parse_resources
from portique.runtime.cgroups.devices_bpf import (
    ACC_MKNOD,
    ACC_READ,
    ACC_WRITE,
    DEV_BLOCK,
    DEV_CHAR,
    compile_rules,
    insn,
)


def run(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Execute `prog` against one bpf_cgroup_dev_ctx; return r0 at exit."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack("<BBhi", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    for _ in range(10_000):
        code, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:
            (regs[dst],) = struct.unpack_from("<I", ctx, regs[src] + off)
        elif code == 0x54:
            regs[dst] = (regs[dst] & (imm & 0xFFFFFFFF)) & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x56:
            if (regs[dst] & 0xFFFFFFFF) != (imm & 0xFFFFFFFF):
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert 0 <= pc < len(insns), "jumped out of the program"
    raise AssertionError("no exit")


DOCKERISH = parse_resources(
    {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
            {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts/*
            {"allow": True, "type": "c", "access": "m"},  # mknod of any char device
            {"allow": True, "type": "b", "access": "m"},
            {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},  # tun
        ]
    },
    "r",
).devices

RW = ACC_READ | ACC_WRITE


@pytest.mark.parametrize(
    ("dev_type", "access", "major", "minor", "allowed"),
    [
        (DEV_CHAR, RW, 1, 3, 1),
        (DEV_CHAR, ACC_READ, 5, 0, 1),
        (DEV_CHAR, RW, 136, 7, 1),
        (DEV_CHAR, RW, 136, 2**32 - 1, 1),
        (DEV_CHAR, ACC_MKNOD, 4, 1, 1),  # mknod allowed, opening not
        (DEV_CHAR, ACC_READ, 4, 1, 0),
        (DEV_BLOCK, ACC_MKNOD, 8, 0, 1),
        (DEV_BLOCK, ACC_READ, 8, 0, 0),  # no reading the host's disk
        (DEV_BLOCK, RW, 8, 0, 0),
        (DEV_CHAR, RW, 10, 200, 1),
        (DEV_CHAR, ACC_MKNOD | ACC_READ, 10, 200, 0),  # no single rule grants both
        (DEV_CHAR, RW, 1, 1, 0),  # /dev/mem
    ],
)
def test_dockerish_rules(dev_type: int, access: int, major: int, minor: int, allowed: int) -> None:
    assert run(compile_rules(DOCKERISH), dev_type, access, major, minor) == allowed


def test_last_match_wins_and_default_deny() -> None:
    allow_all_but_sda = (
        DeviceRule(allow=True),
        DeviceRule(allow=False, type="b", major=8, minor=0, access="rw"),
    )
    prog = compile_rules(allow_all_but_sda)
    assert run(prog, DEV_BLOCK, ACC_READ, 8, 0) == 0
    assert run(prog, DEV_BLOCK, ACC_MKNOD, 8, 0) == 1  # "rw" deny does not cover mknod
    assert run(prog, DEV_BLOCK, ACC_READ, 8, 16) == 1
    assert run(compile_rules(()), DEV_CHAR, ACC_READ, 1, 3) == 0


def test_instruction_encoding() -> None:
    assert insn(0x95) == bytes.fromhex("9500000000000000")
    assert insn(0xB7, 0, imm=1) == bytes.fromhex("b700000001000000")
    # A major above 2^31 is stored as the same 32 bits in the signed imm field.
    assert insn(0x56, 4, off=3, imm=2**32 - 1) == bytes.fromhex("560403" + "00" + "ffffffff")
    assert len(compile_rules(DOCKERISH)) % 8 == 0


def test_nothing_follows_a_catch_all() -> None:
    # The kernel's verifier rejects unreachable instructions ("unreachable insn").
    prog = compile_rules(DOCKERISH)
    insns = [prog[i : i + 8] for i in range(0, len(prog), 8)]
    assert insns[-2:] == [insn(0xB7, 0, imm=0), insn(0x95)]
    assert insns.count(insn(0x95)) == len(DOCKERISH)  # one exit per rule, no default tail
    allow_all = compile_rules((DeviceRule(allow=False, type="c", major=1), DeviceRule(allow=True)))
    assert len(allow_all) == 8 * (6 + 2)  # loads + "r0 = 1; exit"
