"""The loop of Docker's multi-container verbs (stop, kill, rm, pause, ...).

Each container is acted on in turn; a success prints the name as the user gave
it, a failure prints one line and the verb goes on with the next, exiting 1 if
any failed, as the docker CLI does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


def for_each_container(
    refs: Iterable[str], action: Callable[[str], object], *, missing_ok: bool = False
) -> int:
    """Run `action(ref)` for every ref; `missing_ok` skips unknown ones silently
    (`rm -f` of a container that is not there is no error in Docker)."""
    from portique.errors import NotFound, PortiqueError

    status = 0
    for ref in refs:
        try:
            action(ref)
        except NotFound as exc:
            if missing_ok:
                continue
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        except PortiqueError as exc:
            sys.stderr.write(f"portique: {exc}\n")
            status = 1
            continue
        print(ref)
    return status
