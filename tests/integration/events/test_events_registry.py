"""push and pull events (issue 13, item 3), against a real registry on loopback:
the actor is the familiar reference, `name` its repository, as dockerd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.events_cli import now, recorded
from support.registry import Registry, start_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("evreg"), "plain") as reg:
        yield reg


def test_push_and_pull_events(pq: Portique, registry: Registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/ev/busybox:v1"
    since = now()
    pq.ok("tag", "busybox", ref)
    pq.ok("push", ref, timeout=120)
    pq.ok("rmi", ref)
    pq.ok("pull", ref, timeout=120)
    lines = recorded(pq, since, "--filter", "type=image", "--filter", "event=push", "--filter", "event=pull")  # fmt: skip
    texts = [ln.split(" ", 1)[1] for ln in lines]
    assert texts == [
        f"image push {ref} (name={registry.host}/ev/busybox)",
        f"image pull {ref} (name={registry.host}/ev/busybox)",
    ]
    # The image filter takes the reference with or without its tag.
    assert len(recorded(pq, since, "--filter", f"image={registry.host}/ev/busybox", "--filter", "event=pull")) == 1  # fmt: skip
    pq.ok("rmi", ref)
