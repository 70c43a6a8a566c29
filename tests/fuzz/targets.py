"""Fuzz targets: one function per parser of hostile input (issue 9).

Each target takes the raw bytes an attacker controls and checks the
properties every parser must keep, whatever the input:

- it raises nothing but the parser's documented error type (a
  PortiqueError subclass the CLI prints as one line, or the DNS server's
  DNSFormatError, which it turns into a FORMERR reply);
- memory stays bounded (tracemalloc's peak, far above what a correct parse
  needs) and a parse ends (a hang detector, minutes above any real parse);
- the tar reader writes nothing outside the directory it unpacks into.

The targets are driven by hypothesis (tests/fuzz/test_fuzz.py, every CI run)
and by atheris/libFuzzer (tests/fuzz/atheris_main.py, for longer runs); the
seed and regression inputs live in tests/fuzz/corpus/<target>/.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import stat
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portique.build.dockerfile import Instruction

MEMORY_BASE = 96 << 20  # bytes a parse may use whatever its input
MEMORY_PER_INPUT_BYTE = 200
HANG_SECONDS = 60  # a hang detector, not a speed check: real parses take milliseconds


NATIVE_LIMITS = False  # set by atheris_main: libFuzzer bounds memory and time itself


class Finding(AssertionError):
    """A property of a target that an input broke."""


@contextlib.contextmanager
def bounded(size: int) -> Iterator[None]:
    """Fail the target if it runs away in memory or never ends."""
    if NATIVE_LIMITS:
        yield
        return

    def hang(_sig: int, _frame: object) -> None:
        raise Finding(f"the parse did not end within {HANG_SECONDS} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_SECONDS)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        limit = MEMORY_BASE + MEMORY_PER_INPUT_BYTE * size
        if peak > limit:
            raise Finding(f"the parse used {peak} bytes for a {size}-byte input")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if not tracing:
            tracemalloc.stop()


# ------------------------------------------- tar (image/tarreader.py, image/unpack.py)

SENTINEL = b"outside the layer\n"


def _tree(path: str) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_nlink, st.st_mtime_ns)
    return out


def _remove(path: str) -> None:
    def unlock(_fn: Callable[..., Any], p: str, _exc: Any) -> None:
        # A layer may leave 0000 directories; the fuzzer may run without root.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            with contextlib.suppress(OSError):
                os.chmod(p, 0o700)
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(p)

    shutil.rmtree(path, onerror=unlock)


def tar_layer(data: bytes) -> None:
    """unpack() into <sandbox>/root beside <sandbox>/outside (reachable as
    ../outside, the way an escape would name it): the tar reader's entries
    (image/tarreader.py) as unpack creates them; only InvalidLayer, and
    nothing outside root created, changed or linked to."""
    from portique.image.unpack import InvalidLayer, unpack

    sandbox = tempfile.mkdtemp(prefix="fuzz-tar-")
    try:
        root, outside = os.path.join(sandbox, "root"), os.path.join(sandbox, "outside")
        os.mkdir(root)
        os.mkdir(outside)
        Path(outside, "sentinel").write_bytes(SENTINEL)
        os.symlink("sentinel", os.path.join(outside, "link"))
        before = _tree(outside)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with bounded(len(data)):
                unpack(io.BytesIO(data), fd)
        except InvalidLayer:
            pass
        finally:
            os.close(fd)
        if sorted(os.listdir(sandbox)) != ["outside", "root"]:
            raise Finding(f"the layer created {sorted(os.listdir(sandbox))} beside its root")
        if _tree(outside) != before:
            raise Finding("the layer changed files outside its root")
        if Path(outside, "sentinel").read_bytes() != SENTINEL:
            raise Finding("the layer wrote through to a file outside its root")
        st = os.lstat(root)
        if not stat.S_ISDIR(st.st_mode):
            raise Finding("the layer replaced its own root")
    finally:
        _remove(sandbox)


# ---------------------------------------------------------------- oci/image.py

_MEDIA_TYPES = (
    None,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "text/plain",
)


def manifest(data: bytes) -> None:
    """parse_manifest under every media type a registry may claim, then what
    pull does with the result: only InvalidArgument (InvalidManifest,
    DigestError) or NotFound for a platform the index lacks."""
    from portique.errors import InvalidArgument, NotFound
    from portique.oci import image as oci

    with bounded(len(data)):
        for media_type in _MEDIA_TYPES:
            try:
                parsed = oci.parse_manifest(data, media_type)
            except InvalidArgument:
                continue
            if isinstance(parsed, oci.Index):
                for want in ("linux/amd64", "linux/arm64/v8", "windows/amd64"):
                    with contextlib.suppress(InvalidArgument, NotFound):
                        oci.select_platform(parsed, want)
            else:
                for layer in parsed.layers:
                    with contextlib.suppress(InvalidArgument):
                        oci.layer_compression(layer)


def image_config(data: bytes) -> None:
    """parse_image_config, then the engine's reading of it: only InvalidArgument."""
    from portique.errors import InvalidArgument
    from portique.oci import image as oci

    with bounded(len(data)), contextlib.suppress(InvalidArgument):
        oci.parse_image_config(data)


# ---------------------------------------------------------------- build/dockerfile.py


def dockerfile(data: bytes) -> None:
    """parse, the stage plan, and what the builder applies to each instruction
    (split, key=value, ARG, substitution, the config changes of
    build/metadata.py), and each instruction as an `import --change`: only
    InvalidArgument (DockerfileError is one)."""
    from portique.build import metadata
    from portique.build.dockerfile import expand, parse, parse_key_values
    from portique.build.stages import parse_arg, plan
    from portique.errors import InvalidArgument
    from portique.image.importer import parse_changes
    from portique.words import split_words

    def apply(instr: Instruction, where: str) -> None:
        state = metadata.StageState(metadata.scratch_config(), [], "", {})
        metadata.apply(instr, state, state.scope(), where, df.escape)

    text = data.decode("utf-8", "surrogateescape")
    with bounded(len(data)):
        try:
            df = parse(text)
        except InvalidArgument:
            return
        env = {"A": "a", "EMPTY": "", "HOME": "/root"}
        for instr in df.instructions:
            where = f"{df.filename}:{instr.line}"
            for call in (
                lambda i=instr: split_words(i.rest, df.escape),
                lambda i=instr: expand(i.rest, env, escape=df.escape),
                lambda i=instr, w=where: parse_key_values(i.rest, i.cmd, where=w),
                lambda i=instr: parse_arg(i, df.filename),
                lambda i=instr: [expand(h.content, env) for h in i.heredocs if h.expand],
                lambda i=instr, w=where: apply(i, w),
                lambda i=instr: parse_changes([i.original]),
            ):
                with contextlib.suppress(InvalidArgument):
                    call()
        with contextlib.suppress(InvalidArgument):
            plan(df, build_args={"A": "b"})


# ---------------------------------------------------------------- config.json (oci/runtime.py)


def config_json(data: bytes) -> None:
    """config.json's bytes as the runtime reads them (JSON, then parse_spec with
    linux.resources and linux.seccomp, parsed by oci/resources.py and
    oci/seccomp.py): only InvalidArgument."""
    from portique.errors import InvalidArgument
    from portique.oci.runtime import parse_config_bytes

    with bounded(len(data)), contextlib.suppress(InvalidArgument):
        parse_config_bytes(data)


def spec_object(obj: object) -> None:
    """parse_spec of an already decoded JSON value (hypothesis's structured inputs)."""
    from portique.errors import InvalidArgument
    from portique.oci.runtime import parse_spec

    with bounded(len(json.dumps(obj))), contextlib.suppress(InvalidArgument):
        parse_spec(obj)


# ---------------------------------------------------------------- network/dns.py, dnsserver.py


class _Names:
    """The resolver's name table, in memory (a peer of dnsserver.Names)."""

    table = {"web": ["172.18.0.2"], "db": ["172.18.0.3", "172.18.0.4"], "a" * 63: ["10.0.0.9"]}

    def lookup(self, name: str) -> list[str] | None:
        return self.table.get(name)


def dns_message(data: bytes) -> None:
    """The embedded DNS server's handling of one message from a container
    (UDP and TCP), and the answer parser: nothing escapes but DNSFormatError
    from the parsers; every reply is a well-formed message with the query's
    ID, and a UDP reply fits in 512 bytes."""
    from portique.network import dns
    from portique.network.dnsserver import Resolver

    resolver = Resolver(_Names(), [])  # type: ignore[arg-type]
    with bounded(len(data)):
        with contextlib.suppress(dns.DNSFormatError):
            dns.parse_answer(data)
        for tcp in (False, True):
            reply = resolver.answer_local(data, tcp)
            if not reply:
                continue  # relayed upstream, or an answer to an answer: no reply
            if reply[:2] != data[:2]:
                raise Finding(f"reply ID {reply[:2].hex()} for query ID {data[:2].hex()}")
            if not tcp and len(reply) > dns.UDP_MAX:
                raise Finding(f"UDP reply of {len(reply)} bytes")
            try:
                dns.parse_answer(reply)
            except dns.DNSFormatError as exc:
                raise Finding(f"malformed reply ({exc}): {reply.hex()}") from None


# ---------------------------------------------------------------- engine/request.py


def create_body(data: bytes) -> None:
    """A `POST /containers/create` body as `portique serve` reads it (JSON, an
    object, then split_create_body): only InvalidArgument."""
    from portique.engine.request import split_create_body
    from portique.errors import InvalidArgument

    with bounded(len(data)), contextlib.suppress(InvalidArgument):
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if isinstance(obj, dict):
            split_create_body(obj)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "tar": tar_layer,
    "manifest": manifest,
    "image_config": image_config,
    "dockerfile": dockerfile,
    "config_json": config_json,
    "dns": dns_message,
    "create_body": create_body,
}
CORPUS = Path(__file__).parent / "corpus"


def corpus(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())
