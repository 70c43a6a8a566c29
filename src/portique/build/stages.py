"""Split a Dockerfile into stages and decide which ones a build needs.

Pure: works on the parsed Dockerfile only. A stage is a FROM and the
instructions after it. Global ARGs (before the first FROM) are visible in
FROM lines, and inside a stage only after a bare `ARG NAME` re-declares them.
`--target` picks the last stage to build; stages that neither it nor its
`FROM <stage>` / `COPY --from=<stage>` dependencies reach are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portique.build.dockerfile import Dockerfile, DockerfileError, Instruction, expand
from portique.errors import InvalidArgument
from portique.words import split_words


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    name: str | None  # the `AS name`, lower-cased as Docker does
    base: str  # FROM's image after global-ARG expansion: a ref, "scratch", or a stage name
    platform: str | None
    instructions: tuple[Instruction, ...]
    from_line: int


@dataclass(frozen=True, slots=True)
class Plan:
    global_args: Mapping[str, str | None]  # declared before the first FROM (value or None)
    stages: tuple[Stage, ...]
    target: int  # index of the stage whose result is the image
    needed: frozenset[int]  # indexes of the stages to build, target included


def plan(df: Dockerfile, *, build_args: Mapping[str, str], target: str | None = None) -> Plan:
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    head: Instruction | None = None

    def close() -> None:
        if head is not None and current is not None:
            stages.append(_make_stage(df, len(stages), head, current, global_args, build_args))

    for instr in df.instructions:
        if instr.cmd == "FROM":
            close()
            head, current = instr, []
        elif current is None:
            if instr.cmd != "ARG":
                raise DockerfileError(
                    f"{df.filename}:{instr.line}: {instr.cmd} before the first FROM"
                    " (only ARG may come first)"
                )
            global_args.update(parse_arg(instr, df.filename))
        else:
            current.append(instr)
    close()
    if not stages:
        raise DockerfileError(f"{df.filename}: no FROM instruction")
    names = stage_names(stages)
    if target is None:
        tgt = len(stages) - 1
    else:
        if target.lower() not in names:
            raise InvalidArgument(f"target stage {target!r} could not be found")
        tgt = names[target.lower()]
    needed = _reachable(stages, tgt, names)
    return Plan(global_args, tuple(stages), tgt, frozenset(needed))


def _make_stage(
    df: Dockerfile,
    index: int,
    head: Instruction,
    body: list[Instruction],
    global_args: Mapping[str, str | None],
    build_args: Mapping[str, str],
) -> Stage:
    scope = {k: build_args.get(k, v or "") for k, v in global_args.items()}
    words = split_words(head.rest)
    base = expand(words[0], scope)
    if not base:
        raise DockerfileError(f"{df.filename}:{head.line}: FROM names no image after expansion")
    name = words[2].lower() if len(words) == 3 else None
    platform = head.flag("platform")
    if platform is not None:
        platform = expand(platform, scope)
    return Stage(index, name, base, platform, tuple(body), head.line)


def stage_names(stages: Iterable[Stage]) -> dict[str, int]:
    names: dict[str, int] = {}
    for s in stages:
        if s.name is not None:
            names[s.name] = s.index
    return names


def _reachable(stages: list[Stage], target: int, names: Mapping[str, int]) -> set[int]:
    needed: set[int] = set()
    todo = [target]
    while todo:
        i = todo.pop()
        if i in needed:
            continue
        needed.add(i)
        stage = stages[i]
        dep = stage_ref(stage.base, names, before=i)
        if dep is not None:
            todo.append(dep)
        for instr in stage.instructions:
            src = instr.flag("from") if instr.cmd == "COPY" else None
            if src is not None:
                dep = stage_ref(src, names, before=i)
                if dep is not None:
                    todo.append(dep)
    return needed


def stage_ref(name: str, names: Mapping[str, int], *, before: int) -> int | None:
    """The stage index `name` refers to (a stage name or a number), if any."""
    key = name.lower()
    if key in names and names[key] < before:
        return names[key]
    if key.isascii() and key.isdigit() and int(key) < before:
        return int(key)
    return None


def parse_arg(instr: Instruction, filename: str) -> list[tuple[str, str | None]]:
    """`ARG a b=2` -> [("a", None), ("b", "2")]."""
    out: list[tuple[str, str | None]] = []
    for word in split_words(instr.rest):
        name, eq, value = word.partition("=")
        if not name or not (name[0].isalpha() or name[0] == "_"):
            raise DockerfileError(f"{filename}:{instr.line}: invalid ARG name {name!r}")
        out.append((name, value if eq else None))
    return out
