"""cgroup v2 device rules as an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE).

cgroup v2 has no devices.allow/deny files: the kernel asks an eBPF program
attached to the cgroup, once per device access, with
    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
where access_type = (access << 16) | type, and allows it when the program
returns 1. `compile_rules(rules)` builds that program, pure bytes; loading and
attaching it take the bpf(2) syscall, which lives in portique.linux.bpf.

Semantics: the last rule that matches decides; no match denies. For the rule
lists runtimes write (deny all, then allow each device; or allow all, then
deny some), this is exactly what the v1 devices cgroup does. A rule matches
when its type is "a" or equal, its major/minor are wildcards or equal, and the
requested access bits are a subset of the rule's (as runc's filter).
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

    from portique.oci.resources import DeviceRule

# bpf_cgroup_dev_ctx encodings (include/uapi/linux/bpf.h).
DEV_BLOCK: Final = 1
DEV_CHAR: Final = 2
ACC_MKNOD: Final = 1
ACC_READ: Final = 2
ACC_WRITE: Final = 4
_TYPES: Final = {"b": DEV_BLOCK, "c": DEV_CHAR}
_ACCESS: Final = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# Opcodes used (class | op | source).
LDX_MEM_W: Final = 0x61  # dst = *(u32 *)(src + off)
ALU32_AND_K: Final = 0x54  # dst &= imm (32 bit)
ALU32_RSH_K: Final = 0x74  # dst >>= imm (32 bit)
ALU32_MOV_X: Final = 0xBC  # dst = src (32 bit)
ALU64_MOV_K: Final = 0xB7  # dst = imm
JMP32_JNE_K: Final = (
    0x56  # if (u32)dst != imm: pc += off  (32-bit compare: majors > 2^31 stay exact)
)
JMP_EXIT: Final = 0x95

MAX_RULES: Final = 1024  # the verifier's instruction limit is far above this


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn: u8 code, u4 dst, u4 src, s16 off, s32 imm (little endian)."""
    if imm >= 2**31:
        imm -= 2**32  # the field is s32; the bits are what matter
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """Instructions for one rule: each test jumps past the block on mismatch."""
    # ("skip-if-ne", register, value) entries are encoded once the length is known.
    items: list[bytes | tuple[int, int]] = []
    if rule.type != "a":
        items.append((2, _TYPES[rule.type]))
    if rule.major is not None:
        items.append((4, rule.major))
    if rule.minor is not None:
        items.append((5, rule.minor))
    access = sum(_ACCESS[c] for c in set(rule.access))
    if access != ACC_MKNOD | ACC_READ | ACC_WRITE:
        # requested & ~allowed must be 0: r1 = r3 & ~access; skip if r1 != 0
        items.append(insn(ALU32_MOV_X, 1, 3))
        items.append(insn(ALU32_AND_K, 1, imm=~access & 0xFFFFFFFF))
        items.append((1, 0))
    items.append(insn(ALU64_MOV_K, 0, imm=1 if rule.allow else 0))
    items.append(insn(JMP_EXIT))
    n = len(items)
    return [
        it if isinstance(it, bytes) else insn(JMP32_JNE_K, it[0], off=n - i - 1, imm=it[1])
        for i, it in enumerate(items)
    ]


def compile_rules(rules: Iterable[DeviceRule]) -> bytes:
    """The program for `rules`, as the raw bytes of its bpf_insn array."""
    rules = list(rules)
    if len(rules) > MAX_RULES:
        raise ValueError(f"more than {MAX_RULES} device rules")
    prog = [
        # r2 = type, r3 = access, r4 = major, r5 = minor (r1 = ctx)
        insn(LDX_MEM_W, 2, 1, 0),
        insn(ALU32_AND_K, 2, imm=0xFFFF),
        insn(LDX_MEM_W, 3, 1, 0),
        insn(ALU32_RSH_K, 3, imm=16),
        insn(LDX_MEM_W, 4, 1, 4),
        insn(LDX_MEM_W, 5, 1, 8),
    ]
    # Checked last rule first: the first match found is the last one listed.
    for rule in reversed(rules):
        prog.extend(_rule_block(rule))
        if _matches_all(rule):
            # Nothing after a catch-all can run, and the verifier refuses
            # unreachable instructions.
            return b"".join(prog)
    prog.extend([insn(ALU64_MOV_K, 0, imm=0), insn(JMP_EXIT)])
    return b"".join(prog)


def _matches_all(rule: DeviceRule) -> bool:
    return (
        rule.type == "a"
        and rule.major is None
        and rule.minor is None
        and set(rule.access) == {"r", "w", "m"}
    )
