"""What `build -` reads on stdin: a (compressed) tar context, or a Dockerfile alone."""

from __future__ import annotations

import gzip
import io
import tarfile

from portique.engine.images import _is_archive


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 12
        tar.addfile(info, io.BytesIO(b"FROM scratch"))
    return buf.getvalue()


def test_a_tar_in_any_form_is_a_context() -> None:
    assert _is_archive(_tar()[:512])
    assert _is_archive(gzip.compress(_tar())[:512])
    v7 = bytearray(_tar()[:512])
    v7[257:265] = bytes(8)  # no ustar magic: the checksum still tells
    v7[148:156] = b"%06o\0 " % (sum(v7[:148]) + 8 * 32 + sum(v7[156:512]))
    assert _is_archive(bytes(v7))


def test_a_dockerfile_is_not() -> None:
    assert not _is_archive(b"FROM busybox\nRUN true\n")
    assert not _is_archive(b"# syntax=docker/dockerfile:1\n" + b"RUN x\n" * 100)
