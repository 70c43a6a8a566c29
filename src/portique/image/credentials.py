"""Registry credentials in Docker's config file (and, read-only, Podman's auth.json).

Docker keeps them in `$DOCKER_CONFIG/config.json` (default `~/.docker`) as

    {"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}}, ...}

with Docker Hub under the key "https://index.docker.io/v1/". Keys may carry a
scheme and path ("https://host/v1/"); Docker matches on the host alone, and
so do we. `portique login` writes the file atomically (mode 0600), keeping
every other key in it. Lookups also read, after Docker's file, Podman's
`$REGISTRY_AUTH_FILE` or `$XDG_RUNTIME_DIR/containers/auth.json` (same format).
Credential helpers (`credsStore`, `credHelpers`) are run as Docker does:
`docker-credential-<name> get` with the server on stdin.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from portique.errors import InvalidArgument, PortiqueError
from portique.fileio import atomic_write

DOCKER_HUB_KEY: Final = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS: Final = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
MAX_CONFIG_SIZE: Final = 16 << 20


def docker_config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env)
    return Path(os.environ.get("HOME") or Path.home()) / ".docker"


def docker_config_path() -> Path:
    return docker_config_dir() / "config.json"


def podman_auth_paths() -> list[Path]:
    paths: list[Path] = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        paths.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers/auth.json")
    return paths


def normalize_server(server: str) -> str:
    """A registry's host ("docker.io" for Docker Hub) from a config key or CLI argument."""
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    s = s.split("/", 1)[0].lower()
    return "docker.io" if s in _DOCKER_HUB_HOSTS else s


def config_key(host: str) -> str:
    """The key Docker writes for `host` (Docker Hub keeps its historical URL)."""
    host = normalize_server(host)
    return DOCKER_HUB_KEY if host == "docker.io" else host


def encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def decode_auth(value: str, where: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(f"{where}: invalid base64 in auth") from None
    user, sep, password = raw.partition(":")
    if not sep or not user:
        raise InvalidArgument(f"{where}: auth is not base64 of user:password")
    return user, password.strip("\x00")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_SIZE + 1)
    except FileNotFoundError:
        return {}
    if len(data) > MAX_CONFIG_SIZE:
        raise InvalidArgument(f"{path}: file too large")
    if not data.strip():
        return {}
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: expected a JSON object")
    return doc


def _auths(doc: Mapping[str, Any], path: Path) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    auths = doc.get("auths")
    if auths is None:
        auths = {}
    if not isinstance(auths, dict):
        raise InvalidArgument(f"{path}: auths must be an object")
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        host = normalize_server(key)
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            out.setdefault(host, decode_auth(entry["auth"], f"{path}: auths[{key!r}]"))
        elif isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            out.setdefault(host, (entry["username"], entry["password"]))
    return out


def _helper_get(helper: str, server: str) -> tuple[str, str] | None:
    # Imported here: only a configured credential helper runs a process.
    import shutil
    import subprocess

    if not helper.replace("-", "").replace("_", "").isalnum():
        return None
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "get"], input=server.encode(), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        doc = json.loads(out.stdout)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        return None
    return (user, secret) if isinstance(user, str) and isinstance(secret, str) else None


@dataclass
class Credentials:
    """Credentials by registry host; `get(host)` is what the registry client asks."""

    entries: dict[str, tuple[str, str]]
    helpers: dict[str, str]
    default_helper: str | None = None

    @classmethod
    def load(cls, config_path: Path | None = None) -> Credentials:
        path = config_path or docker_config_path()
        doc = _read_json(path)
        entries = _auths(doc, path)
        for extra in podman_auth_paths() if config_path is None else []:
            for host, creds in _auths(_read_json(extra), extra).items():
                entries.setdefault(host, creds)
        helpers_v = doc.get("credHelpers") or {}
        helpers = (
            {normalize_server(k): v for k, v in helpers_v.items() if isinstance(v, str)}
            if isinstance(helpers_v, dict)
            else {}
        )
        store = doc.get("credsStore")
        return cls(entries, helpers, store if isinstance(store, str) and store else None)

    @classmethod
    def none(cls) -> Credentials:
        return cls({}, {})

    def get(self, host: str) -> tuple[str, str] | None:
        host = normalize_server(host)
        if host in self.entries:
            return self.entries[host]
        helper = self.helpers.get(host) or self.default_helper
        if helper:
            return _helper_get(helper, config_key(host))
        return None


def store_credentials(
    server: str, username: str, password: str, config_path: Path | None = None
) -> Path:
    """Write base64 `auth` for `server` into Docker's config.json (atomically, 0600)."""
    path = config_path or docker_config_path()
    doc = _read_json(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    host = normalize_server(server)
    # Drop other spellings of the same host so a stale one cannot win a lookup.
    for key in [k for k in auths if normalize_server(k) == host]:
        del auths[key]
    auths[config_key(host)] = {"auth": encode_auth(username, password)}
    doc["auths"] = auths
    _write(path, doc)
    return path


def remove_credentials(server: str, config_path: Path | None = None) -> bool:
    """Forget `server`; False if nothing was stored for it."""
    path = config_path or docker_config_path()
    doc = _read_json(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    host = normalize_server(server)
    keys = [k for k in auths if normalize_server(k) == host]
    if not keys:
        return False
    for key in keys:
        del auths[key]
    _write(path, doc)
    return True


def _write(path: Path, doc: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)
    except OSError as exc:
        raise PortiqueError(f"cannot write credentials to {path}: {exc.strerror}") from None


__all__ = [
    "DOCKER_HUB_KEY",
    "Credentials",
    "config_key",
    "decode_auth",
    "docker_config_path",
    "encode_auth",
    "normalize_server",
    "remove_credentials",
    "store_credentials",
]
