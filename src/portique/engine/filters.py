"""Docker's `filters`: a map of key -> values, as the API carries it.

    {"label": ["tier=front", "app"], "dangling": ["true"]}

The CLI builds it from repeated `--filter key=value` flags
(cli/docker/filters.py), the API parses it from the `filters` query
parameter; the engine's listing and prune operations take it and check it
here, so both faces refuse the same keys with the same words. Within a key
the values are alternatives (any one may match) and every key must match;
`label` is Docker's exception: every value must match.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from portique.errors import InvalidArgument

Filters = Mapping[str, Sequence[str]]

__all__ = ["Filters", "check", "flag", "label_matches", "labels_match", "one_of"]


def check(filters: Filters | None, allowed: Collection[str]) -> dict[str, list[str]]:
    """A copy of `filters` whose keys are all in `allowed`; Docker's error otherwise."""
    out: dict[str, list[str]] = {}
    for key, values in (filters or {}).items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(values, str):  # a lone value where a list belongs
            values = [values]
        out[key] = [str(v) for v in values]
    return out


def flag(key: str, value: str) -> bool:
    """A boolean filter's value (`dangling=true`): true/1 or false/0, else Docker's error."""
    word = value.strip().lower()
    if word in ("true", "1"):
        return True
    if word in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={value}'")


def one_of(key: str, value: str, words: Iterable[str]) -> str:
    """`value` when it is one of `words`, else Docker's error naming the pair."""
    if value not in words:
        raise InvalidArgument(f"invalid filter '{key}={value}'")
    return value


def label_matches(labels: Mapping[str, str], want: str) -> bool:
    """`key` (present) or `key=value` (equal)."""
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def labels_match(labels: Mapping[str, str] | None, wants: Iterable[str]) -> bool:
    """Every `label` filter value matches (Docker's rule for labels)."""
    return all(label_matches(labels or {}, want) for want in wants)
