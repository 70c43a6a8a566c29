"""The build cache seen and cleared (issue 13, items 4 and 9): each step is an
untagged image `run` can start (Docker's classic builder), `system df` counts
the cache, `builder prune [-a] [--filter until=]` and `system prune` clear it,
`image prune` and `rmi` take the step images of what they remove."""

from __future__ import annotations

import re
from pathlib import Path

from support.engine_cli import Portique


def _build(pq: Portique, ctx: Path, dockerfile: str, *flags: str) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    return pq.ok("build", *flags, str(ctx), timeout=300)


def _cache_line(pq: Portique) -> list[str]:
    line = next(x for x in pq.ok("system", "df").splitlines() if x.startswith("Build Cache"))
    return line.split()[2:]


def _all_ids(pq: Portique) -> set[str]:
    return set(pq.ok("images", "-aq").split())


def test_step_ids_are_images_run_can_start(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("copied\n")
    out = _build(
        pq,
        tmp_path,
        "FROM busybox\nRUN echo one > /one\nENV K=v\nCOPY f.txt /f.txt\nRUN echo two > /two\n",
        "--no-cache",
        "-t",
        "steps:1",
    )
    ids = re.findall(r"^ ---> ([0-9a-f]{12})$", out, re.M)
    assert len(ids) == 4, out
    assert out.splitlines()[-2] == f"Successfully built {ids[-1]}"
    assert pq.ok("run", "--rm", ids[0], "sh", "-c", "cat /one; test ! -e /f.txt") == "one\n"
    assert pq.ok("run", "--rm", ids[1], "sh", "-c", "echo $K") == "v\n"
    assert pq.ok("run", "--rm", ids[2], "cat", "/f.txt") == "copied\n"
    # Untagged, hidden from `images` (they have children), listed by `images -a`.
    assert set(ids[:3]) <= _all_ids(pq)
    assert not set(ids[:3]) & set(pq.ok("images", "-q").split())
    # A cached rebuild gives the same images.
    again = _build(
        pq,
        tmp_path,
        "FROM busybox\nRUN echo one > /one\nENV K=v\nCOPY f.txt /f.txt\nRUN echo two > /two\n",
    )
    assert re.findall(r"^ ---> ([0-9a-f]{12})$", again, re.M) == ids
    # rmi takes the step images along, as Docker's.
    pq.ok("rmi", "steps:1")
    assert not set(ids) & _all_ids(pq)


def test_system_df_and_builder_prune(pq: Portique, tmp_path: Path) -> None:
    pq.ok("builder", "prune", "-a", "-f")
    assert _cache_line(pq) == ["0", "0", "0B", "0B"]
    multi = (
        "FROM busybox AS tool\nRUN head -c 3000 /dev/zero > /big\n"
        "FROM busybox\nCOPY --from=tool /big /copied\nRUN echo kept > /kept\n"
    )
    _build(pq, tmp_path, multi, "-t", "kept:1")
    total, active, _size, reclaimable = _cache_line(pq)
    # The stage no image descends from is dangling cache: reclaimable.
    assert (int(total), int(active)) == (3, 2)
    assert reclaimable == "3kB"
    listed = pq.ok("system", "df", "-v")
    assert "Build cache usage: " in listed
    assert "CACHE ID" in listed
    # until= keeps what is newer.
    assert pq.ok("builder", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"
    bad = pq("builder", "prune", "-f", "--filter", "bogus=1")
    assert bad.returncode == 125
    assert bad.stderr.count("\n") == 1
    out = pq.ok("builder", "prune", "-f")
    assert out.startswith("Deleted build cache objects:\n"), out
    # The step's layer (unpacked and as its blob), its config and manifest.
    assert re.search(r"\n\nTotal reclaimed space: [3-9](\.\d+)?kB\n$", out), out
    assert _cache_line(pq)[:2] == ["2", "2"]
    assert pq.ok("run", "--rm", "kept:1", "cat", "/kept") == "kept\n"
    # -a: every entry; the next build runs its steps again.
    pq.ok("builder", "prune", "-a", "-f")
    assert _cache_line(pq)[0] == "0"
    rebuilt = _build(pq, tmp_path, multi, "-t", "kept:1")
    assert "Using cache" not in rebuilt
    pq.ok("rmi", "kept:1")


def test_system_prune_and_image_prune_clear_dangling_cache(pq: Portique, tmp_path: Path) -> None:
    pq.ok("builder", "prune", "-a", "-f")
    first = _build(pq, tmp_path, "FROM busybox\nRUN echo 1 > /v\n", "-q", "-t", "moving:1").strip()
    # The tag moves to a new build: the first one's steps are dangling now.
    _build(pq, tmp_path, "FROM busybox\nRUN echo 2 > /v\n", "-t", "moving:1")
    assert first[7:19] in _all_ids(pq)
    out = pq.ok("system", "prune", "-f")
    assert "Deleted build cache objects:\n" in out, out
    assert first[7:19] not in _all_ids(pq)
    assert _cache_line(pq)[:2] == ["1", "1"]
    assert pq.ok("run", "--rm", "moving:1", "cat", "/v") == "2\n"
    # image prune takes a dangling build's step images, whole chain.
    second = _build(
        pq, tmp_path, "FROM busybox\nRUN echo 3 > /v\nRUN echo 4 > /w\n", "-t", "moving:1"
    )
    steps = re.findall(r"^ ---> ([0-9a-f]{12})$", second, re.M)
    _build(pq, tmp_path, "FROM busybox\nRUN echo 5 > /v\n", "-t", "moving:1")
    pruned = pq.ok("image", "prune", "-f")
    for step in steps:
        assert step in pruned, pruned
    assert not set(steps) & _all_ids(pq)
    pq.ok("rmi", "moving:1")


def test_rmi_of_the_base_keeps_it_for_the_builds_on_it(pq: Portique, tmp_path: Path) -> None:
    pq.ok("tag", "busybox", "base-kept:1")
    _build(pq, tmp_path, "FROM base-kept:1\nRUN echo on-base > /b\n", "-t", "on-base:1")
    # Its last name goes, the image stays for the build made on it (as Docker).
    assert pq.ok("rmi", "base-kept:1") == "Untagged: base-kept:1\n"
    assert pq.ok("run", "--rm", "on-base:1", "cat", "/b") == "on-base\n"
    pq.ok("rmi", "on-base:1")


def test_builder_prune_keeps_what_a_build_gave(pq: Portique, tmp_path: Path) -> None:
    # Untagged, but the user was handed its ID: an image, not cache.
    image = _build(pq, tmp_path, "FROM busybox\nRUN echo result > /r\n", "-q").strip()
    pq.ok("builder", "prune", "-a", "-f")
    assert pq.ok("run", "--rm", image, "cat", "/r") == "result\n"
    pq.ok("rmi", image)
