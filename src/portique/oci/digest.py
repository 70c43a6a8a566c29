"""Content digests (`algorithm:hex`) as the OCI image spec defines them.

Only the two registered algorithms are accepted: sha256 (64 hex) and sha512
(128 hex), lowercase. Everything that names a blob by digest goes through
`parse_digest` first, so a hostile digest can never become a path such as
`sha256:../../etc`.
"""

from __future__ import annotations

import re

from portique.errors import InvalidArgument

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Final

_HEX_LENGTH: Final[dict[str, int]] = {"sha256": 64, "sha512": 128}
_HEX: Final = re.compile(r"[0-9a-f]+")


class DigestMismatch(InvalidArgument):
    """Content did not hash to (or was not the size of) what it claimed."""


def parse_digest(s: str) -> str:
    """Return `s` if it is a valid sha256/sha512 digest, else raise InvalidArgument."""
    if not isinstance(s, str):
        raise InvalidArgument(f"invalid digest: expected a string, got {type(s).__name__}")
    algorithm, sep, hexpart = s.partition(":")
    if not sep:
        raise InvalidArgument(f"invalid digest {s[:80]!r}: missing algorithm")
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidArgument(
            f"invalid digest {s[:80]!r}: unsupported algorithm {algorithm[:20]!r}"
        )
    if len(hexpart) != length or not _HEX.fullmatch(hexpart):
        raise InvalidArgument(f"invalid digest {s[:80]!r}: expected {length} lowercase hex digits")
    return s


def is_digest(s: str) -> bool:
    try:
        parse_digest(s)
    except InvalidArgument:
        return False
    return True


def algorithm_of(digest: str) -> str:
    return parse_digest(digest).partition(":")[0]


def hex_of(digest: str) -> str:
    return parse_digest(digest).partition(":")[2]


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    import hashlib

    if algorithm not in _HEX_LENGTH:
        raise InvalidArgument(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class Verifier:
    """Hash a stream as it passes and check it against an expected digest and size.

    `update` refuses to go past the expected size (a hostile server cannot make
    us store more than the manifest announced); `verify` raises DigestMismatch
    unless exactly `expected_size` bytes hashing to `expected_digest` were seen.
    """

    __slots__ = ("_hash", "expected_digest", "expected_size", "offset")

    def __init__(self, expected_digest: str, expected_size: int | None = None) -> None:
        import hashlib

        algorithm = algorithm_of(expected_digest)
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"invalid size {expected_size} for {expected_digest}")
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.offset = 0
        self._hash = hashlib.new(algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self.offset += len(data)
        if self.expected_size is not None and self.offset > self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected_digest} is larger than its expected size {self.expected_size}"
            )
        self._hash.update(data)

    @property
    def digest(self) -> str:
        return f"{self._hash.name}:{self._hash.hexdigest()}"

    def verify(self) -> None:
        if self.expected_size is not None and self.offset != self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected_digest}: got {self.offset} bytes, expected {self.expected_size}"
            )
        actual = self.digest
        if actual != self.expected_digest:
            raise DigestMismatch(f"blob {self.expected_digest}: content hashes to {actual}")


__all__ = [
    "DigestMismatch",
    "Verifier",
    "algorithm_of",
    "compute_digest",
    "hex_of",
    "is_digest",
    "parse_digest",
    "sha256_digest",
    "sha256_hex",
]
