"""`import`: a root filesystem tarball becomes a one-layer image, like `docker import`.

The tarball (plain, gzip or zstd) is stored as it is, as the image's one
layer; its diff_id is hashed on the way in. Dockerfile-style `--change`
instructions set the image's container config (`parse_changes`), read with
the Dockerfile's own words and KEY=VALUE pairs (portique/words.py), as Docker
reads them with its Dockerfile parser.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final

from portique.errors import InvalidArgument
from portique.image.archive import CHUNK, layer_media_type
from portique.image.compression import Compression, Inflater, LayerHash
from portique.oci import image as oci
from portique.oci.reference import parse_reference
from portique.words import parse_key_values, set_env, split_words

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images

# What `import` accepts: the compressions a layer may have.
IMPORT_COMPRESSIONS: Final = frozenset({Compression.NONE, Compression.GZIP, Compression.ZSTD})
# The Dockerfile instructions `docker import --change` / `docker commit --change` accept.
CHANGE_INSTRUCTIONS: Final = frozenset(
    {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL"}
)


def import_rootfs(
    images: Images,
    source: BinaryIO,
    ref: str | None,
    *,
    changes: Sequence[str] = (),
    message: str = "",
    source_name: str = "-",
) -> ImageRecord:
    """Make a one-layer image from a root filesystem tar (plain, gzip or zstd)."""
    config_changes = parse_changes(changes)
    tags = [parse_reference(ref).familiar()] if ref else []
    tmpdir = images.root / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Unnamed (O_TMPFILE): a killed import leaves no spool file behind.
    with tempfile.TemporaryFile(dir=tmpdir) as spool:
        h = LayerHash()
        for chunk in iter(lambda: source.read(CHUNK), b""):
            h.update(chunk)
            spool.write(chunk)
        if h.size == 0 or h.compression is None:
            raise InvalidArgument("import: the source is empty, expected a tar archive")
        if h.compression not in IMPORT_COMPRESSIONS:
            raise InvalidArgument(f"import: unsupported compression {h.compression}")
        spool.flush()
        spool.seek(0)
        _check_is_tar(spool, h.compression)
        spool.seek(0)
        digest = h.digest
        if not images.store.has(digest):
            with images.store.lock(digest), images.store.ingest(digest, h.size) as w:
                if w.offset:
                    w.restart()
                shutil.copyfileobj(spool, w, CHUNK)
    layer = oci.Descriptor(layer_media_type(h.compression), digest, h.size)
    config_bytes = build_import_config(h.diff_id, config_changes, message, source_name)
    config_digest = images.store.write_bytes(config_bytes)
    manifest = oci.new_manifest(config_digest, len(config_bytes), [layer.to_json()])
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = images.store.write_bytes(manifest_bytes)
    images.unpack_layers([layer])
    return images.register(manifest_bytes, manifest_digest, config_bytes, tags=tags)


def _check_is_tar(f: IO[bytes], compression: Compression) -> None:
    head = f.read(64 * 1024)
    if compression is not Compression.NONE:
        head = b"".join(Inflater(compression).feed(head))
    if len(head) < 512:
        # An empty tar is two zero blocks; anything shorter is not a tar.
        raise InvalidArgument("import: the source is not a tar archive")
    if head[:512] == bytes(512):
        return
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        raise InvalidArgument("import: the source is not a tar archive") from None


def build_import_config(
    diff_id: str, container_config: Mapping[str, Any], message: str, source_name: str
) -> bytes:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # As `docker import`: the message, or where the tarball came from, is the comment.
    comment = message or f"Imported from {source_name}"
    history: dict[str, Any] = {"created": created, "comment": comment}
    config: dict[str, Any] = {
        "architecture": oci.parse_platform(oci.host_platform()).architecture,
        "os": "linux",
        "created": created,
        "config": dict(container_config),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [history],
    }
    config["comment"] = comment
    return json.dumps(config, separators=(",", ":")).encode()


# ---- --change ----------------------------------------------------------------------


def parse_changes(changes: Sequence[str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply Dockerfile-style instructions to an image's container config (`config.config`).

    `CMD ["sh"]`, `CMD echo hi` (shell form: ["/bin/sh", "-c", ...]), `ENTRYPOINT`,
    `ENV K=V [K2=V2]` or `ENV K V`, `EXPOSE 80 53/udp`, `LABEL k=v`, `USER`,
    `VOLUME ["/data"]` or `VOLUME /a /b`, `WORKDIR`, `STOPSIGNAL`.
    """
    config: dict[str, Any] = {k: _copy(v) for k, v in (base or {}).items()}
    for change in changes:
        instruction, _, rest = change.strip().partition(" ")
        word = instruction.upper()
        rest = rest.strip()
        where = f"invalid change {change[:100]!r}"
        if word not in CHANGE_INSTRUCTIONS:
            raise InvalidArgument(
                f"{where}: {instruction[:40]} is not one of "
                + ", ".join(sorted(CHANGE_INSTRUCTIONS))
            )
        if not rest and word not in ("CMD", "ENTRYPOINT"):
            raise InvalidArgument(f"{where}: {word} needs an argument")
        if word in ("CMD", "ENTRYPOINT"):
            config[word.title() if word == "CMD" else "Entrypoint"] = _argv(rest)
        elif word == "ENV":
            env = [e for e in config.get("Env") or [] if isinstance(e, str)]
            config["Env"] = set_env(env, parse_key_values(rest, word, where=where))
        elif word == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(parse_key_values(rest, word, where=where))
            config["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in _words(rest, where):
                number, _, proto = port.partition("/")
                if not (number.isascii() and number.isdigit()) or not 0 < int(number) < 65536:
                    raise InvalidArgument(f"{where}: bad port {port!r}")
                if proto.lower() not in ("", "tcp", "udp", "sctp"):
                    raise InvalidArgument(f"{where}: bad protocol {proto!r}")
                ports[f"{int(number)}/{proto.lower() or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif word == "VOLUME":
            paths = _json_list(rest)
            volumes = dict(config.get("Volumes") or {})
            volumes.update({p: {} for p in (paths if paths is not None else _words(rest, where))})
            config["Volumes"] = volumes
        elif word == "USER":
            config["User"] = rest
        elif word == "WORKDIR":
            config["WorkingDir"] = rest
        else:
            config["StopSignal"] = rest
    return config


def _copy(v: Any) -> Any:
    return json.loads(json.dumps(v))


def _json_list(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    return None


def _argv(text: str) -> list[str]:
    """Exec form (a JSON list) as is; shell form wrapped in /bin/sh -c, as Docker does."""
    exec_form = _json_list(text)
    if exec_form is not None:
        return exec_form
    return ["/bin/sh", "-c", text] if text else []


def _words(text: str, where: str) -> list[str]:
    try:
        return split_words(text)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc.message}") from None


__all__ = ["CHANGE_INSTRUCTIONS", "build_import_config", "import_rootfs", "parse_changes"]
