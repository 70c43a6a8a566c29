"""The steps that undo a half-done create or exec: contextlib.ExitStack's
callback stack, without importing contextlib.

`portique-runtime` is a new interpreter per call, and contextlib costs it
~1 ms with the collections and functools it brings, for the one feature the
runtime uses: callbacks run last-in first-out when the block is left by an
exception (or by close()), `pop_all()` to keep what succeeded. As with
ExitStack, every step runs even when one raises; the last exception raised
is the one that propagates, chained to the one before it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType


class Undo:
    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def callback(self, fn: Callable[..., object], /, *args: object) -> None:
        """Run `fn(*args)` when the block is left, after the steps added later."""
        self._steps.append((fn, args))

    def enter_context(self, inner: Undo) -> Undo:
        """`inner`'s steps run (with its own close) where this one is."""
        self._steps.append((inner.close, ()))
        return inner

    def pop_all(self) -> Undo:
        """Keep what was done: the steps move to a new Undo, which is returned."""
        kept = Undo()
        kept._steps, self._steps = self._steps, []
        return kept

    def close(self) -> None:
        self.__exit__(None, None, None)

    def __enter__(self) -> Undo:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame_error = sys.exc_info()[1]
        pending = error
        while self._steps:
            fn, args = self._steps.pop()
            try:
                fn(*args)
            except BaseException as e:
                _chain(e, pending, frame_error)
                pending = e
        if pending is not None and pending is not error:
            # As ExitStack: raising here would set the context to the block's
            # exception again; keep the chain built above.
            context = pending.__context__
            try:
                raise pending
            except BaseException:
                pending.__context__ = context
                raise


def _chain(new: BaseException, old: BaseException | None, frame: BaseException | None) -> None:
    """Make `old` the context at the end of `new`'s chain where that chain
    reaches the exception the caller was handling (ExitStack's rule)."""
    while True:
        context = new.__context__
        if context is None or context is old:
            return
        if context is frame:
            break
        new = context
    new.__context__ = old


__all__ = ["Undo"]
