"""DNS messages (RFC 1035), just what the embedded resolver needs: pure functions.

The server (network/dnsserver.py) decodes a query, answers A (and empty AAAA)
questions for container names and aliases of its network, and passes anything
else to the host's resolvers untouched.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER = struct.Struct("!HHHHHH")
UDP_MAX = 512  # RFC 1035 limit for a UDP message without EDNS
A_RECORD_SIZE = 16  # name pointer 2 + type 2 + class 2 + ttl 4 + rdlength 2 + address 4
MAX_NAME = 255
MAX_POINTER_JUMPS = 16


class QType(IntEnum):
    A = 1
    PTR = 12
    AAAA = 28
    ANY = 255


class RCode(IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


class DNSFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Question:
    id: int
    flags: int
    name: str  # lowercase, no trailing dot
    qtype: int
    qclass: int
    raw_question: bytes  # the question section as received, echoed in replies

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if not label:
            if name.strip("."):
                raise DNSFormatError(f"empty label in {name!r}")
            break
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if len(raw) > 63:
            raise DNSFormatError(f"label too long in {name!r}")
        out += bytes([len(raw)]) + raw
    out += b"\0"
    if len(out) > MAX_NAME:
        raise DNSFormatError(f"name too long: {name!r}")
    return bytes(out)


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` and the offset just after it (following compression
    pointers, a bounded number of times so a hostile loop cannot spin)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    total = 0
    while True:
        if offset >= len(data):
            raise DNSFormatError("name runs past the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DNSFormatError("truncated compression pointer")
            if end < 0:
                end = offset + 2
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise DNSFormatError("too many compression pointers")
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise DNSFormatError("unsupported label type")
        offset += 1
        if length == 0:
            break
        label = data[offset : offset + length]
        if len(label) != length:
            raise DNSFormatError("label runs past the message")
        total += length + 1
        if total > MAX_NAME:
            raise DNSFormatError("name too long")
        labels.append(label.decode("ascii", "replace"))
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def parse_question(data: bytes) -> Question:
    """Decode a query's header and its single question."""
    if len(data) < HEADER.size:
        raise DNSFormatError("message shorter than a header")
    ident, flags, qdcount, _an, _ns, _ar = HEADER.unpack_from(data)
    if qdcount != 1:
        raise DNSFormatError(f"{qdcount} questions, expected 1")
    name, off = decode_name(data, HEADER.size)
    # A pointer may only name an earlier occurrence, and the single question
    # has none before it; echoed into a reply, the pointer would point into
    # the answers (a malformed or looping reply).
    pos = HEADER.size
    while data[pos]:
        if data[pos] & 0xC0:
            raise DNSFormatError("compression pointer in the question")
        pos += data[pos] + 1
    if off + 4 > len(data):
        raise DNSFormatError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, off)
    return Question(ident, flags, name.lower(), qtype, qclass, data[HEADER.size : off + 4])


def build_query(name: str, qtype: int = QType.A, ident: int = 0, *, rd: bool = True) -> bytes:
    flags = 0x0100 if rd else 0
    return HEADER.pack(ident, flags, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)


def build_response(
    q: Question,
    addresses: list[str],
    rcode: int = RCode.NOERROR,
    ttl: int = 600,
    max_size: int | None = None,
) -> bytes:
    """An authoritative answer to `q`: one A record per address, or just `rcode`.

    With `max_size` (512 over UDP without EDNS) the answers that do not fit are
    left out and TC is set, so the client asks again over TCP."""
    # QR=1, opcode copied, AA=1, RD copied, RA=1.
    flags = 0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xF)
    if max_size is not None:
        room = (max_size - HEADER.size - len(q.raw_question)) // A_RECORD_SIZE
        if len(addresses) > room:
            addresses = addresses[: max(room, 0)]
            flags |= 0x0200  # TC
    answers = b""
    for addr in addresses:
        # 0xC00C: a pointer to the question's name, right after the 12-byte header.
        answers += struct.pack("!HHHIH", 0xC00C, QType.A, 1, ttl, 4)
        answers += ipaddress.IPv4Address(addr).packed
    return HEADER.pack(q.id, flags, 1, len(addresses), 0, 0) + q.raw_question + answers


def build_error(data: bytes, rcode: int) -> bytes | None:
    """A header-only error reply to a message we cannot parse, if it has an ID."""
    if len(data) < 2:
        return None
    ident = struct.unpack_from("!H", data)[0]
    return HEADER.pack(ident, 0x8000 | 0x0080 | (rcode & 0xF), 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Answer:
    id: int
    rcode: int
    addresses: tuple[str, ...]


def parse_answer(data: bytes) -> Answer:
    """The A records of a response (for tests and for clients of the resolver)."""
    if len(data) < HEADER.size:
        raise DNSFormatError("message shorter than a header")
    ident, flags, qd, an, _ns, _ar = HEADER.unpack_from(data)
    off = HEADER.size
    for _ in range(qd):
        _, off = decode_name(data, off)
        off += 4
    addrs = []
    for _ in range(an):
        _, off = decode_name(data, off)
        if off + 10 > len(data):
            raise DNSFormatError("truncated answer")
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, off)
        off += 10
        rdata = data[off : off + rdlen]
        if len(rdata) != rdlen:
            raise DNSFormatError("truncated rdata")
        off += rdlen
        if rtype == QType.A and rdlen == 4:
            addrs.append(str(ipaddress.IPv4Address(rdata)))
    return Answer(ident, flags & 0xF, tuple(addrs))


__all__ = [
    "UDP_MAX",
    "Answer",
    "DNSFormatError",
    "QType",
    "Question",
    "RCode",
    "build_error",
    "build_query",
    "build_response",
    "decode_name",
    "encode_name",
    "parse_answer",
    "parse_question",
]
