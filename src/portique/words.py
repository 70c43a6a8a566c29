"""Words and KEY=VALUE pairs, as Dockerfile instructions write them.

One reading for every place that takes Dockerfile syntax: the builder's
ENV, LABEL, EXPOSE, VOLUME, ARG and COPY (build/), and the `--change`
instructions of `portique import` (image/importer.py), which Docker too
reads with its Dockerfile parser.

- `split_words`: blanks separate words outside quotes; quotes are removed;
  the escape character (`\\`, or the Dockerfile's `# escape=`) keeps the next
  character, except inside single quotes (as in a POSIX shell).
- `parse_key_values`: `k=v k2="v 2"`, or for ENV the legacy one-pair form
  `KEY value with spaces`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from portique.errors import InvalidArgument


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on blanks outside quotes; quotes are removed, escapes honoured
    (a backslash inside single quotes is literal, as in a POSIX shell)."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == escape and quote == '"' and i + 1 < len(text):
                i += 1
                cur.append(text[i])
            else:
                cur.append(c)
        elif c in ("'", '"'):
            quote = c
            in_word = True
        elif c == escape and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            in_word = True
        elif c.isspace():
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
        else:
            cur.append(c)
            in_word = True
        i += 1
    if quote:
        raise InvalidArgument(f"unterminated quote in {text!r}")
    if in_word:
        words.append("".join(cur))
    return words


def parse_key_values(
    text: str,
    cmd: str,
    *,
    where: str,
    error: Callable[[str], Exception] = InvalidArgument,
) -> list[tuple[str, str]]:
    """The pairs of an ENV or LABEL instruction's arguments, in order.

    `where` starts every error message (`Dockerfile:7`, `invalid change
    'ENV a'`); `error` is the exception type to raise with it."""
    try:
        words = split_words(text)
        if words and "=" not in words[0] and cmd != "LABEL":
            key, _, value = text.strip().partition(" ")
            return [(key, " ".join(split_words(value.strip())))]
    except InvalidArgument as exc:
        raise error(f"{where}: {exc.message}") from None
    if not words:
        raise error(f"{where}: {cmd} requires at least one argument")
    if "=" not in words[0]:
        raise error(f"{where}: LABEL needs key=value pairs")
    pairs = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise error(f"{where}: {cmd} names must be key=value, got {w!r}")
        pairs.append((key, value))
    return pairs


def set_env(env: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[str]:
    """An image config's Env list with `pairs` set: a variable already there
    keeps its place, a new one goes last (Docker's ENV)."""
    values: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        values[key] = value
    values.update(pairs)
    return [f"{k}={v}" for k, v in values.items()]


__all__ = ["parse_key_values", "set_env", "split_words"]
