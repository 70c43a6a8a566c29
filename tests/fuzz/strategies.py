"""Hypothesis strategies that build inputs shaped like each parser's format
(random bytes alone rarely pass a tar checksum or a JSON decoder), with
hostile twists: names with .. and NULs, links out of the root, huge and
negative numbers, deep nesting, compression pointers, truncation."""

from __future__ import annotations

import gzip
import json
import struct
from typing import Any

from hypothesis import strategies as st

# ---------------------------------------------------------------- JSON values

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "/", "..", "../../etc", "a" * 300, "sha256:" + "a" * 64, "\x00", "1.0.2"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# JSON nested deeper than Python's recursion limit (json.loads raises
# RecursionError, not ValueError).
DEEP_JSON = st.tuples(st.integers(1, 3000), st.sampled_from([b"[", b'{"a":', b'[{"k":'])).map(
    lambda t: t[1] * t[0]
)


# ---------------------------------------------------------------- tar layers

_NAMES = st.one_of(
    st.sampled_from(
        [
            "a", "a/b", "./a", "/abs", "../outside/x", "a/../../outside", "dir/", "",
            ".wh.a", "dir/.wh..wh..opq", ".wh.", ".wh..", "a/.wh.b", "l", "l/x", "h",
            "outside", "../outside", "x" * 120, "d/" * 60 + "f", "a\x00b", "é/ü",
        ]
    ),
    st.text(alphabet="ab./\\\x00.-_", max_size=20),
)  # fmt: skip
_TYPES = st.sampled_from([*b"0123456755xgLKSV\x00", ord("A")])
_LINKS = st.sampled_from(
    ["a", "../outside", "../outside/sentinel", "/", "/etc/passwd", "l", "a/b", "", "x" * 150]
)


def _octal(n: int, width: int) -> bytes:
    if 0 <= n < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, n)
    # GNU base-256 (two's complement for negatives), as hostile tars may send.
    return bytes([0xFF if n < 0 else 0x80]) + (n % (1 << (8 * (width - 1)))).to_bytes(
        width - 1, "big"
    )


def _header(
    name: bytes, typ: int, size: int, mode: int, link: bytes, dev: tuple[int, int], bad: bool
) -> bytes:
    h = bytearray(512)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(1_700_000_000, 12)
    h[156] = typ
    h[157:257] = link[:100].ljust(100, b"\0")
    h[257:265] = b"ustar\x0000"
    h[329:337] = _octal(dev[0], 8)
    h[337:345] = _octal(dev[1], 8)
    h[148:156] = b" " * 8
    chk = sum(h) + (1 if bad else 0)
    h[148:156] = b"%06o\0 " % chk
    return bytes(h)


def _pax(records: list[tuple[str, str]]) -> bytes:
    body = b""
    for k, v in records:
        kv = f" {k}={v}\n".encode("utf-8", "surrogateescape")
        n = len(kv)
        while len(str(n + len(str(n))).encode()) + len(kv) != n:
            n = len(str(n + len(str(n)))) + len(kv)
        body += str(n).encode() + kv
    return body


@st.composite
def tar_layers(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        name = draw(_NAMES).encode("utf-8", "surrogateescape")
        typ = draw(_TYPES)
        data = draw(st.binary(max_size=64))
        size = draw(st.one_of(st.just(len(data)), st.integers(-5, 1 << 40)))
        if draw(st.booleans()) and draw(st.booleans()):
            records = draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(
                            [
                                "path",
                                "linkpath",
                                "size",
                                "uid",
                                "mtime",
                                "SCHILY.xattr.user.x",
                                "SCHILY.xattr.trusted.overlay.opaque",
                                "GNU.sparse.map",
                                "x",
                            ]
                        ),
                        st.one_of(_NAMES, st.sampled_from(["-1", "1e9", "9" * 30, "1.5"])),
                    ),
                    max_size=3,
                )
            )
            body = _pax(records)
            out += _header(b"pax", ord("x"), len(body), 0o644, b"", (0, 0), False)
            out += body + bytes(-len(body) % 512)
        if len(name) > 100 and draw(st.booleans()):
            out += _header(b"././@LongLink", ord("L"), len(name) + 1, 0, b"", (0, 0), False)
            out += name + b"\0" + bytes(-(len(name) + 1) % 512)
        mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o7777, 0, -1]))
        dev = draw(st.sampled_from([(0, 0), (1, 3), (8, 0), (1 << 21, 5)]))
        link = draw(_LINKS).encode()
        out += _header(
            name, typ, size, mode, link, dev, draw(st.booleans()) and draw(st.booleans())
        )
        out += data + bytes(-len(data) % 512)
    if draw(st.booleans()):
        out += bytes(1024)
    cut = draw(st.one_of(st.none(), st.integers(0, len(out))))
    if cut is not None:
        out = out[:cut]
    if draw(st.integers(0, 3)) == 0:
        out = gzip.compress(out, mtime=0)
    return out


# ---------------------------------------------------------------- manifests and configs

_DIGESTS = st.sampled_from(
    ["sha256:" + "a" * 64, "sha256:" + "A" * 64, "sha512:" + "b" * 128, "md5:x", "sha256:", "", 7]
)
_DESCRIPTOR = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.sampled_from(
            [
                "application/vnd.oci.image.layer.v1.tar+gzip",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "text/html",
            ]
        ),
        "digest": _DIGESTS,
        "size": st.one_of(st.integers(-1, 2**64), st.just("1")),
        "urls": JSON,
        "annotations": JSON,
        "platform": st.fixed_dictionaries(
            {},
            optional={
                "os": st.sampled_from(["linux", "windows", "", 1]),
                "architecture": st.sampled_from(["amd64", "arm64", "arm", "x86_64", ""]),
                "variant": st.sampled_from(["v8", "v7", ""]),
            },
        ),
    },
)
MANIFESTS = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 1, 3, "2", None, 2.0]),
        "mediaType": st.sampled_from(
            [
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "x",
            ]
        ),
        "config": st.one_of(_DESCRIPTOR, JSON),
        "layers": st.one_of(st.lists(_DESCRIPTOR, max_size=4), JSON),
        "manifests": st.one_of(st.lists(_DESCRIPTOR, max_size=4), JSON),
        "annotations": JSON,
        "subject": _DESCRIPTOR,
    },
).map(json_bytes)
IMAGE_CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "architecture": st.sampled_from(["amd64", "arm64", "", 5]),
        "os": st.sampled_from(["linux", "", None]),
        "created": st.sampled_from(["2024-01-01T00:00:00Z", "yesterday", 0]),
        "config": st.fixed_dictionaries(
            {},
            optional={
                k: JSON
                for k in (
                    "Cmd",
                    "Entrypoint",
                    "Env",
                    "ExposedPorts",
                    "Volumes",
                    "Labels",
                    "User",
                    "WorkingDir",
                    "StopSignal",
                    "Healthcheck",
                    "OnBuild",
                    "Shell",
                )
            },
        ),
        "rootfs": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["layers", "x"]), "diff_ids": JSON}
        ),
        "history": JSON,
    },
).map(json_bytes)

# ---------------------------------------------------------------- Dockerfiles

_DOCKER_TOKENS = st.sampled_from(
    [
        "FROM ", "RUN ", "CMD ", "ENTRYPOINT ", "ENV ", "ARG ", "LABEL ", "COPY ", "ADD ",
        "WORKDIR ", "USER ", "VOLUME ", "SHELL ", "HEALTHCHECK ", "ONBUILD ", "EXPOSE ",
        "STOPSIGNAL ", "MAINTAINER ", "FORM ", "busybox", "scratch", " AS ", "base",
        "--platform=", "--from=", "--chown=", "--mount=", "--interval=", "--=",
        "$A", "${A}", "${A:-", "${A:+", "${A?", "${", "}", "$", "\\$", "'", '"', "\\",
        "`", "\\\n", "\n", "\n# comment\n", "# escape=`\n", "# syntax=x\n", "<<EOF\n",
        "<<-'EOF'\n", "\nEOF\n", '["sh", "-c"]', "[", "]", ",", "=", " ", "\t", "\r\n",
        "a=b ", "k=\"v w\" ", "NONE", "CMD", "/", "..", "\x00",
    ]
)  # fmt: skip
DOCKERFILES = st.one_of(
    st.lists(_DOCKER_TOKENS, max_size=40).map("".join),
    st.integers(1, 1000).map(lambda n: "FROM b\nENV X=" + "${U:-" * n + "x" + "}" * n + "\n"),
    st.integers(1, 400).map(lambda n: "FROM b\nRUN " + "\\\n" * n + "x\n"),
    st.integers(1, 3000).map(lambda n: "FROM b\nCMD " + "[" * n + "\n"),
    st.text(max_size=200),
).map(lambda t: t.encode("utf-8", "surrogateescape"))

# ---------------------------------------------------------------- config.json

BASE_SPEC: dict[str, Any] = {
    "ociVersion": "1.2.0",
    "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["A=b"]},
    "root": {"path": "rootfs"},
    "hostname": "h",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
        "resources": {
            "memory": {"limit": 1 << 30},
            "cpu": {"shares": 512, "cpus": "0-1"},
            "devices": [{"allow": False, "access": "rwm"}],
            "pids": {"limit": 10},
        },
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                }
            ],
        },
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}],
        "maskedPaths": ["/proc/kcore"],
        "sysctl": {"net.ipv4.ip_forward": "1"},
    },
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


_SPEC_PATHS = _paths(BASE_SPEC)


@st.composite
def specs(draw: st.DrawFn) -> Any:
    """The base config with a few subtrees replaced by hostile values."""
    spec = json.loads(json.dumps(BASE_SPEC))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_SPEC_PATHS))
        if not path:
            return draw(JSON)
        node = spec
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    return spec


# ---------------------------------------------------------------- DNS messages


@st.composite
def dns_queries(draw: st.DrawFn) -> bytes:
    ident = draw(st.integers(0, 0xFFFF))
    flags = draw(st.sampled_from([0x0100, 0, 0x8000, 0x2800, 0x7800, 0xFFFF]))
    qd = draw(st.sampled_from([1, 1, 1, 0, 2, 0xFFFF]))
    counts = [draw(st.sampled_from([0, 1, 0xFFFF])) for _ in range(3)]
    name = b""
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            name += struct.pack("!H", 0xC000 | draw(st.integers(0, 60)))  # a pointer
            break
        if kind == 1:
            name += bytes([draw(st.sampled_from([0x40, 0x80, 64, 63]))])
        else:
            label = draw(st.sampled_from([b"web", b"db", b"WEB", b"a" * 63, b"x", b"\xff\x00."]))
            name += bytes([len(label)]) + label
    if draw(st.booleans()):
        name += b"\0"
    qtype = draw(st.sampled_from([1, 28, 12, 255, 0, 0xFFFF]))
    qclass = draw(st.sampled_from([1, 255, 3]))
    tail = draw(st.binary(max_size=16))
    msg = (
        struct.pack("!HHHHHH", ident, flags, qd, *counts) + name + struct.pack("!HH", qtype, qclass)
    )
    return (msg + tail)[: draw(st.integers(0, len(msg) + len(tail)))]
