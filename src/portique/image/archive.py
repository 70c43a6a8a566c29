"""Image archives: the formats `save` writes and `load` reads, and what both share.

Two archive formats, both tar files:

- docker-archive (`docker save`): manifest.json (`[{Config, RepoTags, Layers}]`),
  repositories, the config and layer files. Like Docker >= 25 we name every file
  `blobs/sha256/<hex>` and also write an OCI layout (oci-layout, index.json) into
  the same tar, so that the original manifest, and so every digest, survives a
  save/load round trip.
- oci-archive: the OCI image layout (oci-layout, index.json, blobs/) in a tar.

The operations live beside this module: image/load.py (an archive is hostile
there: read member by member, every digest checked), image/save.py, and
image/importer.py (`import` of a root filesystem tarball, which is no image
archive but shares the layer handling); image/compression.py decompresses.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Final

from portique.errors import InvalidArgument
from portique.image.compression import Compression
from portique.oci import image as oci
from portique.oci.digest import parse_digest

CHUNK: Final = 1 << 20  # bytes copied at a time
OCI_LAYOUT: Final = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"


# progress(layer digest, bytes done, bytes total)
Progress = Callable[[str, int, int], None]


class InvalidArchive(InvalidArgument):
    """The archive is malformed, truncated or lies about its content."""


class ArchiveFormat(StrEnum):
    DOCKER = "docker-archive"
    OCI = "oci-archive"


def blob_name(digest: str) -> str:
    """Where an OCI layout keeps the blob `digest`: blobs/<algorithm>/<hex>."""
    algorithm, _, hexpart = parse_digest(digest).partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def layer_media_type(compression: Compression) -> str:
    """The OCI media type of a layer blob compressed with `compression`."""
    try:
        return {
            Compression.NONE: oci.MEDIA_TYPE_OCI_LAYER,
            Compression.GZIP: oci.MEDIA_TYPE_OCI_LAYER_GZIP,
            Compression.ZSTD: oci.MEDIA_TYPE_OCI_LAYER_ZSTD,
        }[compression]
    except KeyError:
        raise InvalidArchive(f"unsupported layer compression {compression}") from None


__all__ = [
    "CHUNK",
    "CONTAINERD_NAME",
    "OCI_LAYOUT",
    "REF_NAME",
    "ArchiveFormat",
    "InvalidArchive",
    "Progress",
    "blob_name",
    "layer_media_type",
]
