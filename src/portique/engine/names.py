"""Random container names in Docker's adjective_noun shape (`quiet_heron`).

Our own word lists: adjectives of weather and temperament, nouns from birds,
trees and rivers. Collisions are resolved by the caller retrying (the name
column is UNIQUE in the database); after a few tries a digit is appended as
Docker does.
"""

from __future__ import annotations

import os

ADJECTIVES: tuple[str, ...] = (
    "amber", "ample", "azure", "bold", "brave", "breezy", "bright", "brisk", "calm",
    "candid", "cheerful", "clever", "cosy", "crisp", "curious", "daring", "dapper",
    "deft", "eager", "earnest", "elated", "fair", "fearless", "festive", "fond",
    "frosty", "gentle", "gallant", "glad", "golden", "graceful", "hardy", "hazy",
    "honest", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "lunar",
    "mellow", "merry", "misty", "modest", "nimble", "noble", "patient", "placid",
    "plucky", "polite", "proud", "quiet", "radiant", "rapid", "rustic", "serene",
    "sharp", "shy", "silent", "sleepy", "snowy", "solar", "spry", "steady", "stoic",
    "sunny", "swift", "tender", "tidy", "tranquil", "upbeat", "vivid", "warm",
    "wary", "windy", "wise", "witty", "zesty",
)  # fmt: skip

NOUNS: tuple[str, ...] = (
    "alder", "aspen", "avocet", "beech", "bittern", "brook", "bunting", "cedar",
    "chiffchaff", "condor", "cormorant", "crane", "curlew", "cypress", "delta",
    "dipper", "dunlin", "egret", "elm", "estuary", "falcon", "fjord", "finch",
    "firecrest", "gannet", "godwit", "grebe", "hawthorn", "hazel", "heron", "hornbeam",
    "ibis", "juniper", "kestrel", "kingfisher", "kite", "lapwing", "larch", "linden",
    "linnet", "magpie", "maple", "merlin", "osprey", "ouzel", "oxbow", "pelican",
    "petrel", "pine", "plover", "puffin", "quail", "rapids", "redstart", "robin",
    "rowan", "sandpiper", "shrike", "siskin", "sparrow", "spruce", "stork", "swift",
    "sycamore", "tern", "thrush", "tributary", "wagtail", "warbler", "waxwing",
    "willow", "wren", "yew",
)  # fmt: skip


def random_name(attempt: int = 0) -> str:
    """A fresh candidate; `attempt` > 3 appends a digit to widen the space."""
    # os.urandom rather than `secrets`: that module costs the CLI ~8 ms to import.
    a, n, d = os.urandom(3)
    name = f"{ADJECTIVES[a % len(ADJECTIVES)]}_{NOUNS[n % len(NOUNS)]}"
    if attempt > 3:
        name += str(d % 10)
    return name
