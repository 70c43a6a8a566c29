"""DNS message encoding/decoding, the resolver's decisions, and nft rule rendering."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from portique.network import dns, dnsserver, firewall
from portique.network.firewall import BridgeRules
from portique.network.types import PortMapping, Proto, PublishedPort

# --- DNS codec --------------------------------------------------------------------------


def test_query_roundtrip() -> None:
    raw = dns.build_query("Web.Example.", dns.QType.A, 0x1234)
    q = dns.parse_question(raw)
    assert (q.id, q.name, q.qtype, q.qclass) == (0x1234, "web.example", 1, 1)
    assert q.flags & 0x0100  # RD
    assert not q.is_response
    assert q.opcode == 0


def test_response_with_answers_parses_back() -> None:
    q = dns.parse_question(dns.build_query("db", dns.QType.A, 7))
    resp = dns.build_response(q, ["10.0.0.2", "10.0.0.3"], ttl=60)
    ans = dns.parse_answer(resp)
    assert ans == dns.Answer(7, 0, ("10.0.0.2", "10.0.0.3"))
    flags = struct.unpack_from("!H", resp, 2)[0]
    assert flags & 0x8000  # QR
    assert flags & 0x0400  # AA
    assert flags & 0x0100  # RD copied
    nx = dns.parse_answer(dns.build_response(q, [], dns.RCode.NXDOMAIN))
    assert (nx.rcode, nx.addresses) == (3, ())


def test_compression_pointers_are_followed_and_loops_refused() -> None:
    # Header, then "a" + pointer to offset 12+... build: name1 = 3www0 at 12; name2 = 1a + ptr(12)
    header = dns.HEADER.pack(1, 0, 0, 0, 0, 0)
    body = b"\x03www\x00" + b"\x01a\xc0\x0c"
    data = header + body
    assert dns.decode_name(data, 12) == ("www", 17)
    assert dns.decode_name(data, 17) == ("a.www", 21)
    loop = header + b"\xc0\x0c"
    with pytest.raises(dns.DNSFormatError, match="too many compression pointers"):
        dns.decode_name(loop, 12)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 11,
        dns.HEADER.pack(1, 0, 2, 0, 0, 0) + b"\x00" + b"\x00\x01\x00\x01",  # 2 questions
        dns.HEADER.pack(1, 0, 1, 0, 0, 0) + b"\x05ab",  # label runs past the end
        dns.HEADER.pack(1, 0, 1, 0, 0, 0) + b"\x00\x00",  # truncated question
        dns.HEADER.pack(1, 0, 1, 0, 0, 0) + b"\x80abc",  # bad label type
    ],
)
def test_malformed_questions_raise(data: bytes) -> None:
    with pytest.raises(dns.DNSFormatError):
        dns.parse_question(data)


def test_encode_name_limits() -> None:
    assert dns.encode_name("a.b") == b"\x01a\x01b\x00"
    assert dns.encode_name(".") == b"\x00"
    with pytest.raises(dns.DNSFormatError):
        dns.encode_name("x" * 64)
    with pytest.raises(dns.DNSFormatError):
        dns.encode_name(".".join(["abcdefghi"] * 30))
    with pytest.raises(dns.DNSFormatError):
        dns.encode_name("a..b")


class FakeNames:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def lookup(self, name: str) -> list[str] | None:
        return self.table.get(name)


def test_resolver_answers_known_names_and_defers_others() -> None:
    names = FakeNames({"db": ["10.0.0.2"]})
    r = dnsserver.Resolver(names, [])  # type: ignore[arg-type]
    a = r.answer_local(dns.build_query("DB", dns.QType.A, 9))
    assert a is not None
    assert dns.parse_answer(a).addresses == ("10.0.0.2",)
    # AAAA of a known name: empty NOERROR, so the client does not ask elsewhere.
    aaaa = r.answer_local(dns.build_query("db", dns.QType.AAAA, 9))
    assert aaaa is not None
    assert dns.parse_answer(aaaa) == dns.Answer(9, 0, ())
    assert r.answer_local(dns.build_query("example.org", dns.QType.A, 9)) is None
    # Garbage: FORMERR; a response: ignored (never answer answers).
    bad = r.answer_local(b"\x00\x05garbage")
    assert bad is not None
    assert dns.parse_answer(bad).rcode == dns.RCode.FORMERR
    q = dns.parse_question(dns.build_query("db", dns.QType.A, 1))
    assert r.answer_local(dns.build_response(q, [])) == b""
    # No upstream answers: SERVFAIL.
    fail = r.relay(dns.build_query("example.org", dns.QType.A, 4), tcp=False)
    assert dns.parse_answer(fail).rcode == dns.RCode.SERVFAIL


def test_host_resolvers_parsed(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# c\nnameserver 10.0.0.53\nnameserver fd00::1\nsearch x\nnameserver 127.0.0.53\n"
    )
    assert dnsserver.host_resolvers(conf) == [("10.0.0.53", 53), ("127.0.0.53", 53)]
    assert dnsserver.host_resolvers(tmp_path / "missing") == []


# --- nft rendering ----------------------------------------------------------------------

NET_A = BridgeRules("a" * 64, "pq-aaaaaaaaaaaa", "10.1.0.0/24", "10.1.0.1", False)
NET_B = BridgeRules("b" * 64, "pq-bbbbbbbbbbbb", "10.2.0.0/24", "10.2.0.1", False)
NET_I = BridgeRules("c" * 64, "pq-cccccccccccc", "10.3.0.0/24", "10.3.0.1", True)


def test_table_name_per_root() -> None:
    assert firewall.table_name(Path("/var/lib/portique")) == "portique"
    other = firewall.table_name(Path("/tmp/x"))
    assert other.startswith("portique_")
    assert len(other) == len("portique_") + 8
    assert other != firewall.table_name(Path("/tmp/y"))


def test_nat_rules() -> None:
    ports = [
        PublishedPort("d" * 64, "10.1.0.2", PortMapping(80, 8080, "127.0.0.1")),
        PublishedPort("d" * 64, "10.1.0.2", PortMapping(53, 5353, "0.0.0.0", Proto.UDP)),
    ]
    text = firewall.render_nat("pt", [NET_A, NET_I], ports)
    assert text.startswith("table ip pt_nat {")
    assert "fib daddr type local jump published" in text
    assert (
        'ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80 comment "container dddddddddddd"'
        in text
    )
    assert "    udp dport 5353 dnat to 10.1.0.2:53" in text
    assert 'oifname != "pq-aaaaaaaaaaaa" ip saddr 10.1.0.0/24 masquerade' in text
    # Internal networks never masquerade outward.
    assert 'oifname != "pq-cccccccccccc"' not in text
    assert 'oifname "pq-aaaaaaaaaaaa" ip saddr 127.0.0.0/8 masquerade' in text


def test_filter_rules_order_and_content() -> None:
    text = firewall.render_filter("pt", [NET_A, NET_B, NET_I])
    lines = [line.strip() for line in text.splitlines()]
    internal_drop = lines.index(
        'iifname "pq-cccccccccccc" oifname != "pq-cccccccccccc" drop comment "network cccccccccccc"'
    )
    established = lines.index("ct state established,related accept")
    dnat = lines.index(
        'oifname "pq-aaaaaaaaaaaa" ct status dnat accept comment "network aaaaaaaaaaaa"'
    )
    isolate = lines.index(
        'iifname "pq-aaaaaaaaaaaa" oifname "pq-bbbbbbbbbbbb" drop comment "network aaaaaaaaaaaa"'
    )
    inbound = lines.index(
        'oifname "pq-aaaaaaaaaaaa" iifname != "pq-aaaaaaaaaaaa" drop comment "network aaaaaaaaaaaa"'
    )
    assert internal_drop < established < dnat < isolate < inbound
    # Internal networks: only DNS on the gateway reaches the host.
    assert 'iifname "pq-cccccccccccc" ip daddr 10.3.0.1 udp dport 53 accept' in text
    assert 'iifname "pq-cccccccccccc" drop comment "network cccccccccccc"' in text
    assert 'iifname "pq-aaaaaaaaaaaa" drop' not in text


def test_ruleset_replaces_and_flush_removes_both_tables() -> None:
    script = firewall.render_ruleset("pt", [NET_A], [])
    assert script.startswith(
        "table ip pt_nat {}\ndelete table ip pt_nat\ntable inet pt {}\ndelete table inet pt\n"
    )
    assert script.count("table ip pt_nat {\n") == 1
    assert script.count("table inet pt {\n") == 1
    assert firewall.render_flush("pt").count("delete table") == 2
    empty = firewall.render_ruleset("pt", [], [])
    assert "chain forward" in empty
    assert "masquerade" not in empty


def test_large_local_answers_truncate_over_udp_only() -> None:
    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)]
    r = dnsserver.Resolver(FakeNames({"svc": many}), [])  # type: ignore[arg-type]
    query = dns.build_query("svc", dns.QType.A, 3)
    udp = r.answer_local(query)
    assert udp is not None
    assert len(udp) <= dns.UDP_MAX
    assert struct.unpack_from("!H", udp, 2)[0] & 0x0200  # TC: ask again over TCP
    assert 0 < len(dns.parse_answer(udp).addresses) < 60
    tcp = r.answer_local(query, tcp=True)
    assert tcp is not None
    assert dns.parse_answer(tcp).addresses == tuple(many)
    assert not struct.unpack_from("!H", tcp, 2)[0] & 0x0200


def test_bridges_never_reach_host_loopback_except_replies() -> None:
    text = firewall.render_filter("pt", [NET_A])
    lines = [line.strip() for line in text.splitlines()]
    reply = lines.index(
        'iifname "pq-aaaaaaaaaaaa" ip daddr 127.0.0.0/8 ct state established,related accept'
        ' comment "network aaaaaaaaaaaa"'
    )
    drop = lines.index(
        'iifname "pq-aaaaaaaaaaaa" ip daddr 127.0.0.0/8 drop comment "network aaaaaaaaaaaa"'
    )
    assert lines.index("chain input {") < reply < drop
