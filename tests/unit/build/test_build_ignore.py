from __future__ import annotations

import pytest

from portique.build.ignore import is_excluded, may_contain_included, parse_ignore

RULES = """
# comment
*.log
/build/
**/node_modules
docs/*.md
!docs/README.md
temp?
[abc].txt
"""


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("x.log", True),
        ("sub/x.log", False),  # `*` does not cross '/'
        ("build", True),
        ("build/out/a.o", True),  # the parent directory matches
        ("node_modules/x/y.js", True),
        ("a/b/node_modules/z", True),
        ("docs/guide.md", True),
        ("docs/README.md", False),
        ("docs/sub/guide.md", False),
        ("temp1", True),
        ("temp12", False),
        ("a.txt", True),
        ("d.txt", False),
        ("src/main.py", False),
    ],
)
def test_patterns(path: str, excluded: bool) -> None:
    assert is_excluded(path, parse_ignore(RULES)) is excluded


def test_last_match_wins() -> None:
    pats = parse_ignore("*\n!keep\nkeep/secret\n")
    assert is_excluded("other", pats)
    assert not is_excluded("keep/file", pats)
    assert is_excluded("keep/secret", pats)


def test_double_star_prefix_and_suffix() -> None:
    pats = parse_ignore("**/*.pyc\nlogs/**\n")
    assert is_excluded("a.pyc", pats)
    assert is_excluded("x/y/z.pyc", pats)
    assert is_excluded("logs/a/b", pats)
    assert not is_excluded("logsx/a", pats)


def test_excluded_dir_walked_when_exception_inside() -> None:
    pats = parse_ignore("vendor\n!vendor/keep.txt\n")
    assert is_excluded("vendor", pats)
    assert may_contain_included("vendor", pats)
    assert not is_excluded("vendor/keep.txt", pats)
    assert not may_contain_included("other", parse_ignore("other\n"))
