"""PurePosixPath's reading of a path, as text, without importing pathlib.

`portique-runtime` is a new interpreter per call, and pathlib costs it ~4 ms
(re, fnmatch, urllib.parse and ipaddress come with it). The runtime keeps
paths as text; where a value must read as str(Path(text)) did before (a
container's bundle in state.json, a cgroup mountpoint), these give the same
text.
"""

from __future__ import annotations


def pure_parts(text: str) -> list[str]:
    """PurePosixPath(text).parts: the root ("/", or "//" as POSIX allows it)
    then the names, empty ones and "." dropped ("..", kept)."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, not {type(text).__name__}")
    root = ""
    if text.startswith("/"):
        root = "//" if text.startswith("//") and not text.startswith("///") else "/"
    names = [p for p in text.split("/") if p and p != "."]
    return [root, *names] if root else names


def pure_text(text: str) -> str:
    """str(PurePosixPath(text))."""
    parts = pure_parts(text)
    if parts and parts[0] in ("/", "//"):
        return parts[0] + "/".join(parts[1:])
    return "/".join(parts) or "."


__all__ = ["pure_parts", "pure_text"]
