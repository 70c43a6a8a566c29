"""Filling an empty volume from the image must never write outside the volume.

`run` copies what the image has at a volume's path into the volume when it is
empty (Docker's rule). A named volume can be mounted by another container at
the same time, and that container decides what the volume holds while the
copy runs. The copy went by path (shutil.copytree): it made `sub/`, then
wrote `sub/f00`, `sub/f01`, ... each by a path through `sub`; a container
that swapped `sub` for a symlink to a host directory right after its
creation had the image's files written there, as root: the image picks the
names and the content (a cron job, a key), the other container the place.

Here one container watches the shared volume with inotify and makes the swap
the moment `sub` appears; the image holds twenty 1 MiB files under
/data/sub, so the copy is still running when the swap is done.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import Portique
from support.sec_engine import build_static, engine, image_tar

SWAPPER = r"""
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* swapper DIR NAME TARGET: when the directory NAME appears in DIR, move it
   aside and put a symlink to TARGET in its place. */
int main(int argc, char **argv) {
    if (argc != 4 || chdir(argv[1]) != 0) return 2;
    int in = inotify_init1(0);
    inotify_add_watch(in, ".", IN_CREATE);
    puts("watching");
    fflush(stdout);
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        ssize_t len = read(in, buf, sizeof buf);
        for (char *p = buf; len > 0 && p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if ((ev->mask & IN_ISDIR) && ev->len && strcmp(ev->name, argv[2]) == 0) {
                char aside[300];
                snprintf(aside, sizeof aside, "%s.orig", argv[2]);
                rename(argv[2], aside);
                symlink(argv[3], argv[2]);
                puts("swapped");
                return 0;
            }
            p += sizeof *ev + ev->len;
        }
    }
}
"""


@pytest.fixture
def pq(tmp_path: Path) -> Iterator[Portique]:
    swapper = build_static(SWAPPER, tmp_path / "bin" / "swapper")
    payload = tmp_path / "payload"
    payload.mkdir()
    files = {"/usr/bin/swapper": swapper}
    for i in range(20):
        f = payload / f"f{i:02}"
        f.write_bytes(f"* * * * * root echo owned {i}\n".encode().ljust(1 << 20, b"#"))
        files[f"/data/sub/f{i:02}"] = f
    with engine(tmp_path, f"pq-sec-vol-{os.getpid()}") as p:
        p.ok("import", str(image_tar(tmp_path / "img", files)), "filler:latest")
        yield p


def _log(pq: Portique, cid: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in pq.ok("logs", cid):
        assert time.monotonic() < deadline, f"no {text!r} from {cid[:12]}"
        time.sleep(0.05)


def test_volume_copy_never_follows_a_symlink_another_container_swaps_in(
    pq: Portique, tmp_path: Path
) -> None:
    victim = tmp_path / "host-dir"
    victim.mkdir(mode=0o700)
    before = os.stat(victim)
    pq.ok("volume", "create", "shared")
    swapper = pq.ok(
        "run", "-d", "-v", "shared:/vol", "filler", "swapper", "/vol", "sub", str(victim)
    ).strip()  # fmt: skip
    _log(pq, swapper, "watching")
    pq.ok("run", "-d", "-v", "shared:/data", "filler", "sleep", "600")
    _log(pq, swapper, "swapped")
    assert sorted(os.listdir(victim)) == [], "the image's files were written to a host directory"
    after = os.stat(victim)
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode), "host dir chmod-ed"
    # The copy went on into the directory it made (now sub.orig), not through the
    # link; or, had the swap come before it opened that directory, skipped it.
    data = pq.root / "volumes" / "shared" / "_data"
    assert (data / "sub").is_symlink()
    copied = sorted(os.listdir(data / "sub.orig"))
    assert copied in ([], [f"f{i:02}" for i in range(20)])
