"""Registry errors as the user sees them, mapped from distribution's error codes."""

from __future__ import annotations

import json
from typing import Final

from portique.errors import InvalidArgument, NotFound, PortiqueError


class RegistryError(PortiqueError):
    """The registry answered with an error (or not at all)."""

    http_status = 502


class Unauthorized(RegistryError):
    http_status = 401


class RegistryNotFound(NotFound):
    """A manifest, blob or repository the registry does not know."""


class RegistryUnreachable(RegistryError):
    """No answer: connection refused, DNS failure, TLS failure, timeout."""


# distribution's error codes (docs/spec/api.md) that mean "no such thing".
_NOT_FOUND_CODES: Final = frozenset(
    {"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "BLOB_UPLOAD_UNKNOWN"}
)
_AUTH_CODES: Final = frozenset({"UNAUTHORIZED", "DENIED"})


def describe(status: int, body: bytes) -> tuple[str | None, str]:
    """(first error code, "code: message" text) from a registry error body."""
    try:
        doc = json.loads(body[:65536])
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = str(first.get("code", "")) or None
            message = str(first.get("message", "")).strip()
            text = "; ".join(
                f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}"
                for e in errors[:3]
                if isinstance(e, dict)
            )
            return code, text or message or f"status {status}"
        if isinstance(doc, dict) and isinstance(doc.get("details"), str):
            return None, doc["details"]
    except (ValueError, AttributeError, RecursionError):
        pass
    if status == 401 and not body.strip():
        return "UNAUTHORIZED", "unauthorized: authentication required"
    snippet = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
    return None, snippet or f"status {status}"


def error_for(status: int, body: bytes, what: str) -> PortiqueError:
    """The exception for a failed request about `what` (e.g. "manifest for x:y")."""
    code, text = describe(status, body)
    if code in _NOT_FOUND_CODES or (code is None and status == 404):
        return RegistryNotFound(f"{what} not found: {text}")
    if code in _AUTH_CODES or status in (401, 403):
        return Unauthorized(f"{what}: {text}")
    if code in ("DIGEST_INVALID", "SIZE_INVALID", "MANIFEST_INVALID", "NAME_INVALID"):
        return InvalidArgument(f"{what}: {text}")
    return RegistryError(f"{what}: registry answered {status}: {text}")


__all__ = [
    "RegistryError",
    "RegistryNotFound",
    "RegistryUnreachable",
    "Unauthorized",
    "describe",
    "error_for",
]
