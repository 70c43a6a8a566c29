""".dockerignore: which context paths the build leaves out.

Patterns are Go `filepath.Match` patterns extended with `**` (any number of
directories), as Docker's pattern matcher has them:

- each line is cleaned like a path; leading and trailing `/` are dropped;
- `#` starts a comment line, blank lines are ignored;
- `!pattern` re-includes what an earlier pattern excluded: the last matching
  pattern wins;
- a pattern that matches a directory excludes everything below it, so a path
  is tested against itself and each of its parent directories.

`Dockerfile` and `.dockerignore` are never excluded from what the builder
reads itself (Docker sends them anyway); that rule lives in the context code.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    exclusion: bool  # True for `!pattern`
    regex: re.Pattern[str]


def parse_ignore(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line.strip("/")) if line.strip("/") else ""
        if cleaned in ("", "."):
            continue
        patterns.append(Pattern(cleaned, exclusion, _compile(cleaned)))
    return patterns


def _compile(pattern: str) -> re.Pattern[str]:
    """Translate a Go-style glob into an anchored regex over '/'-separated paths."""
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    # `**/` matches zero or more whole directories.
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def is_excluded(path: str, patterns: list[Pattern]) -> bool:
    """True when the context-relative `path` ('/'-separated) is left out."""
    path = posixpath.normpath(path.strip("/"))
    parents = _self_and_parents(path)
    excluded = False
    for pattern in patterns:
        if any(pattern.regex.match(p) for p in parents):
            excluded = not pattern.exclusion
    return excluded


def may_contain_included(dirpath: str, patterns: list[Pattern]) -> bool:
    """Whether an excluded directory must still be walked because a later
    `!pattern` could re-include something inside it."""
    prefix = posixpath.normpath(dirpath.strip("/")) + "/"
    for pattern in patterns:
        if pattern.exclusion and (
            pattern.text.startswith(prefix) or "*" in pattern.text or "?" in pattern.text
        ):
            return True
    return False


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: k + 1]) for k in range(len(parts))]
