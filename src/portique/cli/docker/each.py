"""The loop of Docker's verbs over the objects they name, and the one wording
of a missing object.

Every verb that names containers, images, networks or volumes (rm, rmi,
network rm, volume rm, start, stop, kill, restart, pause, unpause, wait,
inspect, ...) goes through `for_each` or `collect`; the single-object verbs
(exec, logs, port, top, attach, ...) let the NoSuchObject reach main's
handler, which words it here too. So a missing object is always Docker's
`Error: No such container: X` on stderr and exit status 1.

For the other failures the loop goes on with the next object: one
`portique: ...` line each, exit status 1 (or the error's own code where the
verb always kept it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import Enum
from typing import TypeVar

from portique.errors import NoSuchObject, PortiqueError

T = TypeVar("T")

__all__ = ["Missing", "collect", "for_each", "print_ref", "report_missing", "report_missings"]


class Missing(Enum):
    FAIL = "fail"  # say so, exit 1 (the default)
    SKIP = "skip"  # say nothing: `rm -f`, `network rm -f`
    WARN = "warn"  # say so, but no failure: `rmi -f`, as Docker does


def report_missing(exc: NoSuchObject) -> int:
    """`Error: No such container: X` on stderr; exit status 1."""
    sys.stdout.flush()
    sys.stderr.write(f"Error: {exc.docker_text()}\n")
    return 1


def report_missings(errors: Iterable[NoSuchObject]) -> int:
    status = 0
    for exc in errors:
        status = report_missing(exc)
    return status


def print_ref(ref: str, result: object) -> None:
    """Docker prints each object as the user named it once the verb succeeded."""
    print(ref, flush=True)


def for_each(
    refs: Iterable[str],
    action: Callable[[str], T],
    *,
    show: Callable[[str, T], None] = print_ref,
    missing: Missing = Missing.FAIL,
    keep_exit_code: bool = False,
) -> int:
    """`action(ref)` for every ref in turn; `show(ref, result)` after each success."""
    status = 0
    for ref in refs:
        try:
            result = action(ref)
        except NoSuchObject as exc:
            if missing is not Missing.SKIP:
                code = report_missing(exc)
                if missing is Missing.FAIL:
                    status = code
            continue
        except PortiqueError as exc:
            sys.stdout.flush()
            sys.stderr.write(f"portique: {exc}\n")
            status = exc.exit_code if keep_exit_code else 1
            continue
        show(ref, result)
    return status


def collect(refs: Iterable[str], fetch: Callable[[str], T]) -> tuple[list[T], list[NoSuchObject]]:
    """`fetch(ref)` for every ref: what was found, and what was missing (to report
    after the output, as `inspect` does)."""
    found: list[T] = []
    missing: list[NoSuchObject] = []
    for ref in refs:
        try:
            found.append(fetch(ref))
        except NoSuchObject as exc:
            missing.append(exc)
    return found, missing
