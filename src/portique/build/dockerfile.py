"""Dockerfile (Containerfile) parsing: text -> a list of typed instructions.

Pure: no I/O. The parser follows the syntax real projects use:

- parser directives at the very top (`# syntax=...`, `# escape=\\` or `` ` ``);
- comments (lines whose first non-blank character is `#`), blank lines;
- line continuations with the escape character, comment lines inside a
  continuation are dropped (as BuildKit does);
- heredocs (`RUN <<EOF`, `<<-EOF` strips leading tabs, quoted `<<"EOF"` turns
  off expansion, several per instruction, `COPY <<EOF /dest`);
- JSON (exec) form for RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD, VOLUME;
- `--flag=value` options on FROM, RUN, COPY, ADD, HEALTHCHECK.

Variable substitution (`expand`) is done later, by the builder, with the
build args and ENV in scope at each step: `$V`, `${V}`, `${V:-word}`,
`${V-word}`, `${V:+word}`, `${V+word}`, `${V:?msg}`, `${V?msg}`, and the
escape character keeps a `$` literal.

Every error names the file and line: `Dockerfile:7: unknown instruction: FORM`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from portique import words as kv
from portique.errors import InvalidArgument, shown
from portique.words import split_words

INSTRUCTIONS = frozenset(
    {
        "FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "EXPOSE", "COPY",
        "ADD", "WORKDIR", "USER", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
        "ONBUILD", "MAINTAINER",
    }
)  # fmt: skip
# Instructions whose argument may be a JSON array (exec form).
JSON_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
# Instructions that accept --flags before their arguments, and which flags.
FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"network", "mount", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
MAX_DOCKERFILE = 4 << 20  # bytes; a larger file is refused, not parsed

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


@dataclass(frozen=True, slots=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # False when the delimiter was quoted: no variable expansion
    strip_tabs: bool


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction as written: `cmd` upper-cased, `flags` parsed, and the
    rest either as a JSON list (`exec_form`) or as raw text (`rest`)."""

    cmd: str
    rest: str
    line: int
    original: str
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exec_form: tuple[str, ...] | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class Dockerfile:
    filename: str
    directives: Mapping[str, str]
    instructions: tuple[Instruction, ...]
    escape: str = "\\"


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed; the message names file and line."""


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    if len(text) > MAX_DOCKERFILE:
        raise DockerfileError(f"{filename}: file is larger than {MAX_DOCKERFILE} bytes")
    lines = text.replace("\r\n", "\n").split("\n")
    directives, start = _parse_directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{filename}:1: invalid escape directive {escape!r}: use \\ or `")
    instructions: list[Instruction] = []
    i = start
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i + 1  # 1-based line of the instruction
        logical, i = _join_continuation(lines, i, escape)
        instr, i = _parse_instruction(logical, first, lines, i, filename)
        instructions.append(instr)
    return Dockerfile(filename, directives, tuple(instructions), escape)


def _parse_directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Directives are `# key=value` comments before anything else, each key once."""
    directives: dict[str, str] = {}
    for idx, line in enumerate(lines):
        m = _DIRECTIVE.match(line.strip())
        if not m:
            return directives, idx
        key = m.group(1).lower()
        if key not in ("syntax", "escape", "check"):
            # An unknown directive ends the directive block and is a comment.
            return directives, idx
        if key in directives:
            return directives, idx
        directives[key] = m.group(2)
    return directives, len(lines)


def _join_continuation(lines: list[str], i: int, escape: str) -> tuple[str, int]:
    """Join physical lines ending in the escape character; return the next index."""
    parts: list[str] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if parts and line.strip().startswith("#"):
            continue  # comment inside a continuation
        stripped = line.rstrip()
        if stripped.endswith(escape) and not stripped.endswith(escape * 2):
            parts.append(stripped[:-1])
            if i >= len(lines):
                break
            continue
        parts.append(line)
        break
    return "".join(parts), i


def _parse_instruction(
    logical: str, line: int, lines: list[str], nxt: int, filename: str
) -> tuple[Instruction, int]:
    text = logical.strip()
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = f"{more} {rest}"
    cmd = word.upper()
    rest = rest.strip()
    if cmd not in INSTRUCTIONS:
        raise DockerfileError(f"{filename}:{line}: unknown instruction: {word}")
    flags: dict[str, tuple[str, ...]] = {}
    if cmd in FLAGS:
        flags, rest = _parse_flags(cmd, rest, filename, line)
    heredocs: list[Heredoc] = []
    if cmd in ("RUN", "COPY", "ADD"):
        for m in _HEREDOC.finditer(rest):
            body, nxt = _read_heredoc(lines, nxt, m.group(3), filename, line)
            strip = m.group(1) == "-"
            if strip:
                body = "\n".join(ln.lstrip("\t") for ln in body.split("\n"))
            heredocs.append(Heredoc(m.group(3), body, expand=not m.group(2), strip_tabs=strip))
    exec_form = None
    if cmd in JSON_FORM and rest.startswith("["):
        exec_form = _parse_json_form(rest)
    if cmd == "ONBUILD":
        inner = rest.split(None, 1)[0].upper() if rest else ""
        if inner in ("ONBUILD", "FROM", "MAINTAINER", ""):
            raise DockerfileError(f"{filename}:{line}: ONBUILD {inner or '(empty)'} is not allowed")
    if not rest and cmd not in ("RUN",) and not heredocs:
        raise DockerfileError(f"{filename}:{line}: {cmd} requires at least one argument")
    instr = Instruction(
        cmd=cmd,
        rest=rest,
        line=line,
        original=text,
        flags=flags,
        exec_form=exec_form,
        heredocs=tuple(heredocs),
    )
    _check_arity(instr, filename)
    return instr, nxt


def _parse_flags(
    cmd: str, rest: str, filename: str, line: int
) -> tuple[dict[str, tuple[str, ...]], str]:
    flags: dict[str, list[str]] = {}
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        name, eq, value = token[2:].partition("=")
        if name not in FLAGS[cmd]:
            raise DockerfileError(f"{filename}:{line}: unknown flag --{name} for {cmd}")
        if not eq:
            if name in ("link", "keep-git-dir", "parents"):
                value = "true"
            else:
                raise DockerfileError(f"{filename}:{line}: flag --{name} of {cmd} needs a value")
        flags.setdefault(name, []).append(value)
        rest = remainder.lstrip()
    return {k: tuple(v) for k, v in flags.items()}, rest


def _read_heredoc(lines: list[str], i: int, name: str, filename: str, line: int) -> tuple[str, int]:
    body: list[str] = []
    while i < len(lines):
        current = lines[i]
        i += 1
        if current.lstrip("\t") == name:
            return "\n".join(body) + ("\n" if body else ""), i
        body.append(current)
    raise DockerfileError(f"{filename}:{line}: heredoc <<{name} is not terminated")


def _parse_json_form(rest: str) -> tuple[str, ...] | None:
    """A JSON array of strings, or None: Docker then treats the text as shell form."""
    try:
        value = json.loads(rest)
    except (ValueError, RecursionError):  # RUN [[[[...: too deep is not JSON either
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _check_arity(instr: Instruction, filename: str) -> None:
    where = f"{filename}:{instr.line}"
    if instr.cmd not in (
        "FROM",
        "COPY",
        "ADD",
        "WORKDIR",
        "USER",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ):
        return
    try:
        words = split_words(instr.rest) if instr.exec_form is None else list(instr.exec_form)
    except InvalidArgument as exc:
        raise DockerfileError(f"{where}: {exc}") from None
    if instr.cmd == "FROM":
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise DockerfileError(f"{where}: FROM needs 'image' or 'image AS name'")
    elif instr.cmd in ("COPY", "ADD") and not instr.heredocs and len(words) < 2:
        raise DockerfileError(f"{where}: {instr.cmd} requires at least two arguments")
    elif instr.cmd in ("WORKDIR", "USER", "STOPSIGNAL") and len(words) != 1:
        raise DockerfileError(f"{where}: {instr.cmd} requires exactly one argument")
    elif instr.cmd == "SHELL" and instr.exec_form is None:
        raise DockerfileError(f"{where}: SHELL requires the arguments in JSON form")
    elif instr.cmd == "HEALTHCHECK":
        kind = words[0].upper() if words else ""
        if kind not in ("CMD", "NONE"):
            raise DockerfileError(f"{where}: HEALTHCHECK must be 'NONE' or 'CMD ...'")


def parse_key_values(text: str, cmd: str, *, where: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2="v 2"` or the legacy `KEY value with spaces`
    (portique/words.py, shared with `import --change`)."""
    return kv.parse_key_values(text, cmd, where=where, error=DockerfileError)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# `${A:-${B:-x}}` nests; a hostile Dockerfile nesting a thousand deep made
# expand() recurse past Python's limit (a RecursionError, not an error line).
MAX_SUBSTITUTION_DEPTH = 32


def expand(
    text: str,
    env: Mapping[str, str],
    *,
    escape: str = "\\",
    on_error: Callable[[str], Exception] | None = None,
    _depth: int = 0,
) -> str:
    """Substitute variables as Docker does for ENV/ARG-aware instructions."""
    if _depth > MAX_SUBSTITUTION_DEPTH:
        raise (on_error or InvalidArgument)(
            f"variable substitution nested more than {MAX_SUBSTITUTION_DEPTH} deep"
        )
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == escape and i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if c == "'":
            # Single quotes keep their content literal.
            end = text.find("'", i + 1)
            if end == -1:
                out.append(text[i:])
                break
            out.append(text[i : end + 1])
            i = end + 1
            continue
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        if text[i + 1] == "{":
            end = _closing_brace(text, i + 2)
            if end == -1:
                raise (on_error or InvalidArgument)(f"missing '}}' in '{shown(text, 200)}'")
            out.append(_expand_braced(text[i + 2 : end], env, escape, on_error, _depth))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if not m:
            out.append(c)
            i += 1
            continue
        out.append(env.get(m.group(0), ""))
        i = m.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand_braced(
    inner: str,
    env: Mapping[str, str],
    escape: str,
    on_error: Callable[[str], Exception] | None,
    depth: int,
) -> str:
    m = _NAME.match(inner)
    if not m:
        raise (on_error or InvalidArgument)(f"bad substitution: ${{{shown(inner, 200)}}}")
    name = m.group(0)
    op = inner[m.end() :]
    value = env.get(name)
    if not op:
        return value or ""
    colon = op.startswith(":")
    kind = op[1:2] if colon else op[:1]
    word = op[2:] if colon else op[1:]
    is_set = value is not None and (value != "" or not colon)
    if kind == "-":
        if is_set and value is not None:
            return value
        return expand(word, env, escape=escape, on_error=on_error, _depth=depth + 1)
    if kind == "+":
        return (
            expand(word, env, escape=escape, on_error=on_error, _depth=depth + 1) if is_set else ""
        )
    if kind == "?":
        if is_set and value is not None:
            return value
        raise (on_error or InvalidArgument)(f"{name}: {shown(word, 200) or 'parameter not set'}")
    raise (on_error or InvalidArgument)(f"bad substitution: ${{{shown(inner, 200)}}}")
