"""The build context: the directory COPY and ADD read from.

Sources are named relative to the context root. A source that climbs out
(`../x`) or reaches outside through a symlink is refused; globs follow Go's
`filepath.Match` per path segment (so `*` matches dotfiles, as in Docker);
`.dockerignore` patterns leave paths out of every COPY and of the checksums.

`checksum()` is the content key the cache uses for COPY/ADD: it covers each
file's path, type, mode, owner-independent content, and symlink target, so
touching a file's mtime alone does not invalidate the cache (as in BuildKit).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from portique.build.ignore import Pattern, is_excluded, may_contain_included, parse_ignore
from portique.errors import InvalidArgument, NotFound

ALWAYS_SENT = ("Dockerfile", ".dockerignore")


@dataclass(frozen=True, slots=True)
class Source:
    rel: str  # '/'-separated, relative to the context root; "" is the root itself
    path: Path  # absolute host path, known to be inside the context
    is_dir: bool


class BuildContext:
    def __init__(self, root: Path, ignore: list[Pattern] | None = None) -> None:
        self.root = root.resolve()
        self.ignore = ignore if ignore is not None else []

    @classmethod
    def from_dir(cls, path: Path) -> BuildContext:
        if not path.is_dir():
            raise NotFound(f"build context {path} is not a directory")
        try:
            patterns = parse_ignore(read_in_dir(path / ".dockerignore", MAX_IGNORE_FILE))
        except OSError:  # none (or a link leading out of the context: none either)
            patterns = []
        return cls(path, patterns)

    def excluded(self, rel: str) -> bool:
        if rel in ALWAYS_SENT:
            return False
        return bool(self.ignore) and is_excluded(rel, self.ignore)

    def _inside(self, p: Path, what: str) -> Path:
        real = Path(os.path.realpath(p))
        if real != self.root and self.root not in real.parents:
            raise InvalidArgument(f"forbidden path outside the build context: {what}")
        return real

    def sources(self, pattern: str) -> list[Source]:
        """The context entries a COPY/ADD source names (a path or a glob)."""
        cleaned = posixpath.normpath(pattern)
        if cleaned.startswith("/"):
            cleaned = posixpath.normpath(cleaned.lstrip("/")) or "."
        if cleaned == ".." or cleaned.startswith("../"):
            raise InvalidArgument(f"forbidden path outside the build context: {pattern}")
        if cleaned == ".":
            return [Source("", self.root, True)]
        parts = cleaned.split("/")
        matches = self._glob(self.root, "", parts)
        found = []
        for rel in sorted(matches):
            if self.excluded(rel):
                continue
            real = self._inside(self.root / rel, pattern)
            found.append(Source(rel, real, real.is_dir()))
        if not found:
            raise NotFound(f"COPY source {pattern!r} not found in the build context")
        return found

    def _glob(self, base: Path, rel: str, parts: list[str]) -> list[str]:
        head, rest = parts[0], parts[1:]
        if not _has_magic(head):
            names = [head] if os.path.lexists(base / head) else []
        else:
            try:
                names = [n for n in os.listdir(base) if fnmatch.fnmatchcase(n, head)]
            except (NotADirectoryError, FileNotFoundError):
                names = []
        out = []
        for name in names:
            child_rel = f"{rel}/{name}" if rel else name
            if not rest:
                out.append(child_rel)
                continue
            child = base / name
            if os.path.isdir(child):
                # A symlinked directory in the middle must still stay inside.
                self._inside(child, child_rel)
                out.extend(self._glob(child, child_rel, rest))
        return out

    def walk(self, src: Source) -> list[tuple[str, Path]]:
        """Every entry under a source (itself first), relative to the source,
        ignored paths left out; symlinks are listed, never followed."""
        if not src.is_dir:
            return [("", src.path)]
        entries: list[tuple[str, Path]] = [("", src.path)]
        prefix = src.rel
        for dirpath, dirnames, filenames in os.walk(src.path):
            here = os.path.relpath(dirpath, src.path)
            here = "" if here == "." else here
            keep = []
            for d in sorted(dirnames):
                rel = f"{here}/{d}" if here else d
                full_rel = f"{prefix}/{rel}" if prefix else rel
                if self.excluded(full_rel) and not may_contain_included(full_rel, self.ignore):
                    continue
                if not self.excluded(full_rel):
                    entries.append((rel, Path(dirpath) / d))
                if not os.path.islink(Path(dirpath) / d):
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                rel = f"{here}/{f}" if here else f
                full_rel = f"{prefix}/{rel}" if prefix else rel
                if not self.excluded(full_rel):
                    entries.append((rel, Path(dirpath) / f))
        return entries

    def checksum(self, sources: list[Source]) -> str:
        h = hashlib.sha256()
        for src in sources:
            h.update(f"S{src.rel}\0".encode())
            for rel, path in self.walk(src):
                st = os.lstat(path)
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.fsencode(os.readlink(path)))
                elif stat.S_ISREG(st.st_mode):
                    h.update(_file_digest(path))
                h.update(b"\n")
        return "sha256:" + h.hexdigest()


def read_in_dir(path: Path, limit: int) -> str:
    """The text of file `path` (at most `limit` + 1 bytes), its symlinks resolved
    inside its own directory, as BuildKit reads a Dockerfile: a repository's
    `Dockerfile -> /etc/shadow` is not found rather than read (and printed in
    the parse error). OSError when missing; InvalidArgument when not a file."""
    from portique.rootpath import open_in_root

    dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # O_NONBLOCK: a FIFO named Dockerfile must not hang the build.
        fd = open_in_root(dfd, path.name, flags=os.O_RDONLY | os.O_NONBLOCK)
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise InvalidArgument(f"{path.name} is not a regular file")
        return f.read(limit + 1).decode("utf-8", "replace")


MAX_IGNORE_FILE = 4 << 20


def _file_digest(path: Path) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _has_magic(segment: str) -> bool:
    return any(c in segment for c in "*?[")
