"""Digest validation and the streaming verifier."""

from __future__ import annotations

import hashlib

import pytest

from portique.errors import InvalidArgument
from portique.oci.digest import (
    DigestMismatch,
    Verifier,
    compute_digest,
    hex_of,
    is_digest,
    parse_digest,
    sha256_digest,
    sha256_hex,
)

GOOD256 = "sha256:" + "0123456789abcdef" * 4
GOOD512 = "sha512:" + "f" * 128


@pytest.mark.parametrize("d", [GOOD256, GOOD512])
def test_valid(d: str) -> None:
    assert parse_digest(d) == d
    assert is_digest(d)


@pytest.mark.parametrize(
    "d",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,
        "sha256:../../../etc/passwd",
        " sha256:" + "a" * 64,
    ],
)
def test_invalid(d: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid digest"):
        parse_digest(d)
    assert not is_digest(d)


def test_helpers() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert sha256_digest(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert compute_digest(b"abc", "sha512") == "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert hex_of(GOOD256) == GOOD256[7:]


def test_verifier_accepts_exact_content_in_pieces() -> None:
    data = b"x" * 100_000
    v = Verifier(sha256_digest(data), len(data))
    for i in range(0, len(data), 7777):
        v.update(data[i : i + 7777])
    v.verify()
    assert v.offset == len(data)


def test_verifier_rejects_wrong_content() -> None:
    v = Verifier(sha256_digest(b"good"), 4)
    v.update(b"evil")
    with pytest.raises(DigestMismatch, match="content hashes to"):
        v.verify()


def test_verifier_rejects_short_and_long() -> None:
    v = Verifier(sha256_digest(b"abcd"), 4)
    v.update(b"abc")
    with pytest.raises(DigestMismatch, match="got 3 bytes, expected 4"):
        v.verify()
    v = Verifier(sha256_digest(b"abcd"), 4)
    with pytest.raises(DigestMismatch, match="larger than"):
        v.update(b"abcde")


def test_verifier_needs_valid_digest() -> None:
    with pytest.raises(InvalidArgument):
        Verifier("sha256:nope", 1)
