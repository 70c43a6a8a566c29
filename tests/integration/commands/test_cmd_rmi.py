"""`rmi ID` of an image with several tags (issue 13, item 10): Docker refuses
without -f, even when the tags share a repository, and removes all with -f."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from support.engine_cli import Portique


def _fresh_image(pq: Portique, tmp: Path, tag: str) -> str:
    """An image of its own (no children), tagged `tag`; its id."""
    with tarfile.open(tmp / "one.tar", "w") as tar:
        info = tarfile.TarInfo(tag)
        info.size = len(tag)
        tar.addfile(info, io.BytesIO(tag.encode()))
    return pq.ok("import", str(tmp / "one.tar"), tag).strip()


def test_rmi_id_of_an_image_with_two_tags_needs_force(pq: Portique, tmp_path: Path) -> None:
    image = _fresh_image(pq, tmp_path, "rmi-multi:a")
    pq.ok("tag", "rmi-multi:a", "rmi-multi:b")
    r = pq("rmi", image[7:19])
    assert r.returncode == 1, r.stderr
    assert r.stderr == (
        f"portique: conflict: unable to delete {image[7:19]} (must be forced) -"
        " image is referenced in multiple repositories\n"
    )
    assert sorted(pq.ok("images", "--format", "{{.Tag}}", "rmi-multi").split()) == ["a", "b"]
    # One tag less: the id removes the image (its last reference goes with it).
    assert pq.ok("rmi", "rmi-multi:b") == "Untagged: rmi-multi:b\n"
    pq.ok("tag", "rmi-multi:a", "other-repo/x:1")
    assert pq("rmi", image).returncode == 1
    out = pq.ok("rmi", "-f", image).splitlines()
    assert out == ["Untagged: rmi-multi:a", "Untagged: other-repo/x:1", f"Deleted: {image}"]


def test_rmi_id_of_an_image_with_one_tag(pq: Portique, tmp_path: Path) -> None:
    image = _fresh_image(pq, tmp_path, "rmi-single:a")
    assert pq.ok("rmi", image[7:19]).splitlines() == [
        "Untagged: rmi-single:a",
        f"Deleted: {image}",
    ]
