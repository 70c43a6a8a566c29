"""Table-driven test of portique's Go text/template against Go's semantics.

The expected strings live in support/gotemplate_cases.py, written from Go's
documentation; test_cli_gotemplate_go.py checks the same table against Go itself.
"""

from __future__ import annotations

import pytest

from portique.cli.gotemplate import ExecError, Template
from support.gotemplate_cases import CASES, NEWER_GO, OPTIONS, data

ALL = [(t, d, e, "") for t, d, e in CASES + NEWER_GO] + [
    (t, d, e, opt) for opt, cases in OPTIONS.items() for t, d, e in cases
]


def render(template: str, spec: str, missingkey: str = "") -> str:
    out: list[str] = []
    try:
        tmpl = Template(template, name="t", missingkey=missingkey or "default")
        tmpl.execute_into(data(spec), out)
    except ExecError as exc:
        return "ERR:" + str(exc)
    return "".join(out)


@pytest.mark.parametrize(("template", "spec", "expected", "missingkey"), ALL)
def test_template(template: str, spec: str, expected: str, missingkey: str) -> None:
    assert render(template, spec, missingkey) == expected


def test_table_is_large() -> None:
    # the brief: a few hundred cases, errors included
    assert len(ALL) >= 300
    assert sum(e.startswith("ERR:") for _, _, e, _ in ALL) >= 80
