"""Write the seed inputs of tests/fuzz/corpus/ (run once; crashes found later
are added to the corpus by hand, named after what they broke)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
from pathlib import Path

from fuzz.strategies import BASE_SPEC

CORPUS = Path(__file__).parent / "corpus"


def _tar(entries: list[tuple[str, str, bytes | str]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for kind, name, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if kind == "file":
                data = arg if isinstance(arg, bytes) else arg.encode()
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {
                "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE,
            }[kind]  # fmt: skip
            if kind in ("sym", "hard"):
                ti.linkname = str(arg)
            if kind == "chr":
                ti.devmajor, ti.devminor = 1, 3
            t.addfile(ti)
    return buf.getvalue()


def tar_seeds() -> dict[str, bytes]:
    basic = _tar(
        [
            ("dir", "etc", b""), ("file", "etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            ("sym", "bin", "usr/bin"), ("hard", "etc/passwd2", "etc/passwd"),
            ("file", ".wh.gone", b""), ("dir", "opaque", b""), ("file", "opaque/.wh..wh..opq", b""),
            ("chr", "dev/null", b""), ("fifo", "run/fifo", b""),
        ]
    )  # fmt: skip
    return {
        "basic.tar": basic,
        "basic.tar.gz": gzip.compress(basic, mtime=0),
        "long-names-pax.tar": _tar([("file", "d/" * 80 + "f", "x"), ("sym", "s", "t" * 200)]),
        "long-names-gnu.tar": _tar([("file", "g" * 150, "x")], tarfile.GNU_FORMAT),
        "escape-dotdot.tar": _tar([("file", "../outside/x", "pwned")]),
        "escape-symlink-parent.tar": _tar([("sym", "l", "../outside"), ("file", "l/x", "pwned")]),
        "escape-absolute-symlink.tar": _tar([("sym", "l", "/tmp"), ("file", "l/x", "pwned")]),
        "escape-hardlink.tar": _tar([("hard", "h", "../outside/sentinel")]),
        "escape-symlink-then-dir.tar": _tar(
            [
                ("sym", "outside", "../outside"),
                ("dir", "outside", b""),
                ("file", "outside/sentinel", "x"),
            ]
        ),
        "whiteout-root.tar": _tar([("file", ".wh..", b""), ("file", "a/.wh.", b"")]),
        "empty.tar": bytes(1024),
    }


def manifest_seeds() -> dict[str, bytes]:
    desc = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:" + "a" * 64,
        "size": 10,
    }
    cfg = {**desc, "mediaType": "application/vnd.oci.image.config.v1+json"}
    oci = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": [desc],
    }
    docker = {**oci, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**desc, "mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": {"os": "linux", "architecture": "amd64"}},
            {**desc, "mediaType": "application/vnd.oci.image.manifest.v1+json", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    }  # fmt: skip
    return {name: json.dumps(doc).encode() for name, doc in
            [("oci.json", oci), ("docker.json", docker), ("index.json", index)]}  # fmt: skip


def config_seeds() -> dict[str, bytes]:
    cfg = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}},
                   "Volumes": {"/data": {}}, "Labels": {"a": "b"}, "User": "1000:1000",
                   "WorkingDir": "/srv", "StopSignal": "SIGTERM",
                   "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "b" * 64]},
        "history": [{"created_by": "x"}],
    }  # fmt: skip
    return {"config.json": json.dumps(cfg).encode()}


def dockerfile_seeds() -> dict[str, bytes]:
    return {
        "every-instruction": (
            b"# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\n"
            b'ENV A=1 B="two words"\nLABEL k=v\nRUN echo $A \\\n  && echo ${B:-x}\n'
            b"COPY --chown=1:1 a b /dst/\nADD --chmod=644 x /y\nWORKDIR /srv\nUSER 1000\n"
            b'VOLUME ["/data"]\nEXPOSE 80/tcp\nSTOPSIGNAL SIGTERM\nSHELL ["/bin/sh", "-c"]\n'
            b"HEALTHCHECK --interval=5s CMD true\nONBUILD RUN true\n"
            b'ENTRYPOINT ["/bin/sh"]\nCMD ["-c", "true"]\nFROM build\nCOPY --from=build /a /b\n'
        ),
        "heredocs": b"FROM busybox\nRUN <<EOF\necho $A\nEOF\nCOPY <<-'X' /f\n\tliteral $A\nX\n",
        "escape-backtick": b"# escape=`\nFROM busybox\nRUN echo `\n  hi\n",
        # Found by the fuzzer: expand() recursed past Python's limit (RecursionError).
        "crash-substitution-600-deep": (
            "FROM b\nENV X=" + "${U:-" * 600 + "x" + "}" * 600 + "\n"
        ).encode(),
    }


def config_json_seeds() -> dict[str, bytes]:
    return {"base.json": json.dumps(BASE_SPEC).encode()}


def dns_seeds() -> dict[str, bytes]:
    def query(name: bytes, qtype: int = 1) -> bytes:
        return (
            struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", qtype, 1)
        )

    return {
        "a-web": query(b"\x03web\x00"),
        "aaaa-db": query(b"\x02db\x00", 28),
        "any-web": query(b"\x03web\x00", 255),
        "relayed": query(b"\x07example\x03com\x00"),
        "pointer-loop": query(b"\xc0\x0c"),
        # Found by the fuzzer: a pointer in the question, echoed into the reply,
        # pointed into the answers (a malformed, looping reply).
        "crash-question-pointer": query(b"\xc0\x12") + b"\x03web\x00",
    }


# Found by the fuzzers: JSON nested deeper than the recursion limit raised
# RecursionError through every parser that called json.loads.
DEEP = b"[" * 3000


def main() -> None:
    for target, seeds in {
        "tar": tar_seeds(), "manifest": manifest_seeds(), "image_config": config_seeds(),
        "dockerfile": dockerfile_seeds(), "config_json": config_json_seeds(), "dns": dns_seeds(),
    }.items():  # fmt: skip
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        if target in ("manifest", "image_config", "config_json"):
            (d / "crash-json-3000-deep").write_bytes(DEEP)
    (CORPUS / "dockerfile" / "crash-json-form-3000-deep").write_bytes(b"FROM b\nCMD " + DEEP)


if __name__ == "__main__":
    main()
