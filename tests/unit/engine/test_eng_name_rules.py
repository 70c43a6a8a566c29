"""Names and host names as Docker accepts them (issue 9, item 7)."""

from __future__ import annotations

import pytest

from portique.engine import options as opt
from portique.errors import InvalidArgument, shown
from portique.network.networks import check_name


@pytest.mark.parametrize("name", ["ab", "web-1", "a.b_c-d", "0" * 255])
def test_good_volume_names(name: str) -> None:
    opt.check_volume_name(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("x", "volume name is too short, names should be at least two alphanumeric"),
        ("a" * 10_000, "volume name is too long, names may have at most 255 characters"),
        ("ab\n", 'create ab\\n: "ab\\n" includes invalid characters for a local volume name'),
        ("./data", 'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; if you intended to pass a'),
        ("-ab", "includes invalid characters"),
        ("a b", "includes invalid characters"),
    ],
)
def test_bad_volume_names(name: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        opt.check_volume_name(name)
    assert why in err.value.message
    assert "\n" not in err.value.message
    assert len(err.value.message) < 300


def test_volume_names_through_v_and_mount() -> None:
    with pytest.raises(InvalidArgument, match="volume name is too long"):
        opt.parse_volume("a" * 10_000 + ":/data")
    with pytest.raises(InvalidArgument, match="includes invalid characters"):
        opt.parse_mount("type=volume,source=a\n,target=/data")


def test_container_names() -> None:
    assert opt.parse_name("/web") == "web"
    assert opt.parse_name("w" * 255) == "w" * 255
    for bad in ("x", "bad name", "web\n", "-web", "w" * 256, "/" + "w" * 256):
        with pytest.raises(InvalidArgument, match=r"^invalid container name \(") as err:
            opt.parse_name(bad)
        assert "\n" not in err.value.message


def test_network_names() -> None:
    check_name("n")
    check_name("my.net_1-a")
    for bad in ("", "a b", "net\n", "-net", "n" * 256):
        with pytest.raises(InvalidArgument, match=r"^invalid network name") as err:
            check_name(bad)
        assert "\n" not in err.value.message


@pytest.mark.parametrize("name", ["web", "web-1", "a.example.com", "0abc", "x" * 63, "a1.b2"])
def test_rfc1123_hostnames(name: str) -> None:
    opt.check_hostname(name)


@pytest.mark.parametrize(
    "name",
    ["foo\nbar", "foo bar", "-web", "web-", "a..b", ".a", "a.", "under_score", "x" * 64, "é"],
)
def test_bad_hostnames(name: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid hostname format: ") as err:
        opt.check_hostname(name)
    assert "\n" not in err.value.message


def test_shown_keeps_one_line() -> None:
    assert shown("a\nb") == "a\\nb"
    assert shown("x" * 100) == "x" * 64 + "..."
    assert shown("plain") == "plain"


def test_resolver_flags() -> None:
    opt.check_resolver_flags(
        {"DnsSearch": ["example.com", ".", "a-b.c."], "DnsOptions": ["ndots:2"]}
    )
    for host in (
        {"DnsSearch": ["a.com\nnameserver 6.6.6.6"]},
        {"DnsSearch": ["-bad.com"]},
        {"DnsSearch": ["1234"]},
        {"DnsOptions": ["ndots:1\nnameserver 6.6.6.6"]},
        {"DnsOptions": ["two words"]},
        {"DnsOptions": [""]},
    ):
        with pytest.raises(InvalidArgument, match=r'^invalid argument ".*" for "--dns-') as err:
            opt.check_resolver_flags(host)
        assert "\n" not in err.value.message


def test_network_aliases() -> None:
    from portique.network.networks import check_alias

    check_alias("web-1")
    check_alias("my_service.internal")
    for bad in ("", "web\n10.6.6.6 evil", "two words", "tab\tbed", "a" * 256):
        with pytest.raises(InvalidArgument, match=r"^invalid network alias '") as err:
            check_alias(bad)
        assert "\n" not in err.value.message
    networking = {"EndpointsConfig": {"net": {"Aliases": ["ok", "bad\nline"]}}}
    with pytest.raises(InvalidArgument, match="invalid network alias"):
        opt.check_container_strings({}, {}, networking)
