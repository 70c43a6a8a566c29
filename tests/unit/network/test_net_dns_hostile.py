"""Hostile DNS queries from a container (found by tests/fuzz)."""

from __future__ import annotations

import struct

import pytest

from portique.network import dns


def _query(name: bytes, tail: bytes = b"") -> bytes:
    return struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + name + b"\0\x01\0\x01" + tail


@pytest.mark.parametrize("name", [b"\xc0\x12", b"\x03web\xc0\x0c", b"\xc0\x0c"])
def test_compression_pointer_in_the_question_is_a_format_error(name: bytes) -> None:
    """The single question has no earlier name to point to: echoed into the
    reply, a pointer there pointed into the answers (a looping reply)."""
    with pytest.raises(dns.DNSFormatError):
        dns.parse_question(_query(name, b"\x03web\x00"))


def test_plain_question_still_parses() -> None:
    q = dns.parse_question(_query(b"\x03Web\x07example\x00"))
    assert (q.id, q.name, q.qtype) == (0x4242, "web.example", 1)
    reply = dns.build_response(q, ["10.0.0.1"], max_size=dns.UDP_MAX)
    assert dns.parse_answer(reply).addresses == ("10.0.0.1",)
