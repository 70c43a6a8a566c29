"""`portique pull [-q] [--platform P] [--tls-verify=false] NAME[:TAG|@DIGEST]`.

Output follows Docker's: "Using default tag", "<tag>: Pulling from <repo>",
one line per layer (updated in place with a progress bar on a terminal; only
status changes when piped), "Digest: ...", "Status: ...", then the full
reference. `-q` prints only the full reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.image.pull import ProgressEvent
    from portique.image.registry.auth import CredentialSource
    from portique.image.registry.client import RegistryClient

# Statuses that carry a byte count and are redrawn rather than printed when piped.
_TRANSIENT = frozenset({"Downloading", "Extracting", "Pushing"})


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-verify",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="require HTTPS and verify certificates (default true; localhost is plain HTTP)",
    )
    parser.add_argument(
        "--disable-content-trust", action="store_true", default=True, help=argparse.SUPPRESS
    )


def insecure_registries() -> set[str]:
    """$PORTIQUE_INSECURE_REGISTRIES (a,b,...): hosts reached without TLS checks."""
    return {
        h.strip()
        for h in os.environ.get("PORTIQUE_INSECURE_REGISTRIES", "").split(",")
        if h.strip()
    }


def make_client(
    args: argparse.Namespace, credentials: CredentialSource | None = None
) -> RegistryClient:
    """A registry client honouring --tls-verify and $PORTIQUE_INSECURE_REGISTRIES."""
    from portique.engine import registry

    return registry.client(
        credentials=credentials, insecure=insecure_registries(), tls_verify=args.tls_verify
    )


class ProgressPrinter:
    """Docker-style per-layer progress: redrawn in place on a terminal, plain when piped."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.rows: list[str] = []
        self._lock = threading.Lock()

    def _line(self, event: ProgressEvent) -> str:
        from portique.units import human_size

        if event.status in _TRANSIENT and event.total > 0 and event.current > 0:
            width = 50
            filled = min(width, width * event.current // event.total)
            bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
            return f"{event.id}: {event.status} [{bar}] {human_size(event.current)}/{human_size(event.total)}"
        return f"{event.id}: {event.status}"

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if not event.id:
                self.out.write(event.status + "\n")
            elif not self.tty:
                if event.status not in _TRANSIENT:
                    self.out.write(self._line(event) + "\n")
            elif event.id not in self.rows:
                self.rows.append(event.id)
                self.out.write(self._line(event) + "\n")
            else:
                up = len(self.rows) - self.rows.index(event.id)
                # Up to the layer's row, clear it, rewrite, and come back down.
                self.out.write(f"\x1b[{up}A\r\x1b[2K{self._line(event)}\x1b[{up}B\r")
            self.out.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    parser.add_argument(
        "-a", "--all-tags", action="store_true", help="download all tagged images in the repository"
    )
    parser.add_argument("--platform", help="set platform if server is multi-platform capable")
    add_registry_arguments(parser)


def run(eng: Engine, args: argparse.Namespace) -> int:
    from portique.engine import registry
    from portique.oci.reference import parse_reference

    platform = args.platform or os.environ.get("DOCKER_DEFAULT_PLATFORM") or None
    as_typed = parse_reference(args.name, default_tag=None)
    out = sys.stdout
    printer = None if args.quiet else ProgressPrinter(out, out.isatty())
    client = make_client(args)
    refs = registry.pull_refs(args.name, all_tags=args.all_tags, client=client)
    if (
        printer is not None
        and not args.all_tags
        and as_typed.tag is None
        and as_typed.digest is None
    ):
        out.write("Using default tag: latest\n")
    results = []
    for ref in refs:
        # One at a time, so that `-a` prints each tag's progress as it comes.
        results += registry.pull(eng, str(ref), platform=platform, progress=printer, client=client)
    if printer is not None:
        shown = as_typed.familiar_name() if args.all_tags else refs[0].familiar()
        if not results[-1].downloaded and not args.all_tags:
            out.write(f"Digest: {results[-1].digest}\n")
        status = (
            "Downloaded newer image"
            if any(r.downloaded for r in results)
            else "Image is up to date"
        )
        out.write(f"Status: {status} for {shown}\n")
    out.write(f"{as_typed.repository if args.all_tags else refs[0]}\n")
    return 0
