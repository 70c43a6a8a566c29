"""The options of a container's process that `exec` shares with `run`: -e,
--env-file, the environment merge and the --user check. Kept out of engine/options.py, whose
import (the confinement, the seccomp profile, every option table) `exec`
does not otherwise need."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from portique.errors import InvalidArgument
from portique.oci.value import value


def parse_env(items: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """-e KEY=VAL, or -e KEY which copies KEY from our environment when it is set."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key or key.strip() != key or "\0" in item:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if sep:
            out.append(item)
        elif key in env:
            out.append(f"{key}={env[key]}")
    return out


MAX_ENV_FILE = 1 << 20


def read_env_file(path: str, environ: Mapping[str, str] | None = None) -> list[str]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ENV_FILE + 1)
    except OSError as exc:
        raise InvalidArgument(f"cannot read env file {path}: {exc.strerror}") from None
    if len(data) > MAX_ENV_FILE:
        raise InvalidArgument(f"env file {path} is larger than 1 MiB")
    lines = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        lines.append(line)
    return parse_env(lines, environ)


def merge_env(image_env: Iterable[str], user_env: Iterable[str]) -> list[str]:
    """Image Env first, user values replace same-named keys in place (Docker's order)."""
    order: list[str] = []
    values: dict[str, str] = {}
    for item in [*image_env, *user_env]:
        key = item.partition("=")[0]
        if key not in values:
            order.append(key)
        values[key] = item
    return [values[k] for k in order]


@value
class UserSpec:
    user: str  # name or numeric id
    group: str = ""  # "" = the user's primary group


def parse_user(value: str | None) -> UserSpec | None:
    if not value:
        return None
    user, _, group = value.partition(":")
    if not user or any(c in value for c in "\0\n/"):
        raise InvalidArgument(f"invalid user: {value!r}")
    return UserSpec(user, group)
