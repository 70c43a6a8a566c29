"""Reference parsing and normalisation, checked against Docker's behaviour."""

from __future__ import annotations

import pytest

from portique.errors import InvalidArgument
from portique.oci.reference import Reference, parse_reference, parse_repository

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        (
            "127.0.0.1:5000/busybox",
            "127.0.0.1:5000/busybox:latest",
            "127.0.0.1:5000/busybox:latest",
        ),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("localhost:5000/ns/x:t", "localhost:5000/ns/x:t", "localhost:5000/ns/x:t"),
        ("ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        # A bare "name:port" is a tag, not a registry (no slash after it).
        ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"h.io:1/a/b:t@{D}", f"h.io:1/a/b:t@{D}", f"h.io:1/a/b:t@{D}"),
        ("a__b/c-d.e---f", "docker.io/a__b/c-d.e---f:latest", "a__b/c-d.e---f:latest"),
        # An uppercase first component can only be a domain.
        ("Foo.Bar/x", "Foo.Bar/x:latest", "Foo.Bar/x:latest"),
    ],
)
def test_normalises_like_docker(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    # Parsing the full form again is a fixed point.
    assert parse_reference(full) == ref


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("docker.io/Library/busybox", "lowercase"),
        ("busybox:", "tag"),
        ("busybox:-x", "tag"),
        ("busybox:" + "t" * 129, "tag"),
        ("busybox@sha256:abc", "digest"),
        ("busybox@md5:" + "a" * 32, "digest"),
        ("busybox@sha256:" + "A" * 64, "digest"),
        ("a" * 64, "64-byte"),
        ("a//b", "component"),
        ("/busybox", "component"),
        ("busybox/", "component"),
        ("bad_.name", "component"),
        ("-x/y", "component"),
        ("-x.io/y", "domain"),
        ("host:port/x", "domain"),
        ("with space", "characters"),
        ("x/" + "a" * 300, "255"),
        ("h.io:5000/", "missing"),
    ],
)
def test_rejects_invalid(text: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format") as info:
        parse_reference(text)
    assert why in str(info.value)


def test_fields_and_helpers() -> None:
    ref = parse_reference("127.0.0.1:5000/ns/app:v1")
    assert ref == Reference("127.0.0.1:5000", "ns/app", "v1", None)
    assert ref.repository == ref.name == "127.0.0.1:5000/ns/app"
    assert ref.reference == "v1"
    assert str(ref.with_tag("v2")) == "127.0.0.1:5000/ns/app:v2"
    with_digest = ref.with_digest(D)
    assert (with_digest.tag, with_digest.digest, with_digest.reference) == (None, D, D)
    assert ref.familiar_name() == "127.0.0.1:5000/ns/app"
    assert ref.tagged() == "127.0.0.1:5000/ns/app:v1"
    with pytest.raises(InvalidArgument):
        ref.with_tag("bad tag")


def test_default_tag_can_be_left_off() -> None:
    assert parse_reference("busybox", default_tag=None).tag is None
    assert parse_reference("busybox:1", default_tag=None).tag == "1"
    assert parse_reference(f"busybox@{D}").tag is None
    assert parse_repository("busybox").repository == "docker.io/library/busybox"
    with pytest.raises(InvalidArgument):
        parse_repository("busybox:1")
