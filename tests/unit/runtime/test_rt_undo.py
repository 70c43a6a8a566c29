"""runtime/undo.Undo does what contextlib.ExitStack's callbacks do."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from portique.runtime.undo import Undo


def run(
    stack_type: Any, fail_body: bool, failing: set[int]
) -> tuple[list[int], BaseException | None]:
    calls: list[int] = []

    def step(n: int) -> None:
        calls.append(n)
        if n in failing:
            raise RuntimeError(f"step {n}")

    try:
        with stack_type() as undo:
            for n in range(4):
                undo.callback(step, n)
            if fail_body:
                raise ValueError("body")
    except BaseException as e:
        return calls, e
    return calls, None


@pytest.mark.parametrize("fail_body", [False, True])
@pytest.mark.parametrize("failing", [set(), {2}, {1, 3}, {0, 1, 2, 3}])
def test_as_exit_stack(fail_body: bool, failing: set[int]) -> None:
    want_calls, want = run(contextlib.ExitStack, fail_body, failing)
    got_calls, got = run(Undo, fail_body, failing)
    assert got_calls == want_calls == [3, 2, 1, 0]
    assert type(got) is type(want)
    assert str(got) == str(want)

    # The chain of contexts, newest first.
    def chain(e: BaseException | None) -> list[str]:
        out = []
        while e is not None:
            out.append(str(e))
            e = e.__context__
        return out

    assert chain(got) == chain(want)


def test_pop_all_keeps_what_succeeded() -> None:
    calls: list[str] = []
    with Undo() as undo:
        undo.callback(calls.append, "undone")
        kept = undo.pop_all()
    assert calls == []
    kept.close()
    assert calls == ["undone"]


def test_inner_stack_closes_where_it_was_entered() -> None:
    calls: list[str] = []
    with Undo() as undo:
        undo.callback(calls.append, "outer first")
        inner = undo.enter_context(Undo())
        inner.callback(calls.append, "inner")
        undo.callback(calls.append, "outer last")
        inner.close()  # closed early: nothing left for the outer one to run
    assert calls == ["inner", "outer last", "outer first"]
