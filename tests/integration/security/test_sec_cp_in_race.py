"""`cp` into a running container must never open a node the container put in its way.

The container decides what sits at the names `cp` writes. A regular file is
overwritten; anything else (a FIFO, a device node: a container has CAP_MKNOD,
and `cp` runs on the host, outside the container's device cgroup) was unlinked
first, then the name opened with O_CREAT, without O_EXCL. Between the two, the
container can put its node back: `cp` then writes the user's file into it. A
block device node of the host's disk (8:0) would have the file written over
the host's partition table; a FIFO hands the container the data and can block
`cp` forever.

The race is a few microseconds wide. The attacking image ships `catcher`: it
plants a FIFO at each name, watches the directory with inotify, and plants
the FIFO again the moment `cp` unlinks it, holding it open for reading. strace
stretches `cp`'s window (each unlinkat returns 200 ms late, as a preempted or
loaded host would): what the test decides is whether `cp` ever opens an
existing name for writing, not who wins a race.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_cli import PORTIQUE, Portique
from support.sec_engine import build_static, engine, image_tar

CATCHER = r"""
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* catcher DIR NAME...: plant FIFOs at DIR/NAME, plant them again when removed,
   print what anyone writes into one. */
int main(int argc, char **argv) {
    if (argc < 3 || chdir(argv[1]) != 0) { perror("chdir"); return 2; }
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, ".", IN_DELETE | IN_MOVED_TO | IN_CREATE);
    struct pollfd fds[64];
    int n = 1;
    fds[0].fd = in;
    fds[0].events = POLLIN;
    for (int i = 2; i < argc; i++) mkfifo(argv[i], 0666);
    printf("planted\n");
    fflush(stdout);
    for (int rounds = 0; rounds < 600; rounds++) {
        if (poll(fds, n, 100) <= 0) continue;
        if (fds[0].revents & POLLIN) {
            char buf[4096] __attribute__((aligned(8)));
            ssize_t len = read(in, buf, sizeof buf);
            for (char *p = buf; len > 0 && p < buf + len;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                if ((ev->mask & IN_DELETE) && ev->len && n < 64 && mkfifo(ev->name, 0666) == 0) {
                    int fd = open(ev->name, O_RDONLY | O_NONBLOCK);
                    if (fd >= 0) { fds[n].fd = fd; fds[n].events = POLLIN; n++; }
                }
                if (ev->mask & IN_MOVED_TO) printf("replaced %s\n", ev->name);
                p += sizeof *ev + ev->len;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!(fds[i].revents & POLLIN)) continue;
            char data[256];
            ssize_t got = read(fds[i].fd, data, sizeof data - 1);
            if (got > 0) {
                data[got] = 0;
                printf("caught: %s\n", data);
                fflush(stdout);
                return 0;
            }
        }
        fflush(stdout);
    }
    printf("nothing caught\n");
    return 1;
}
"""


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portique]:
    base = tmp_path_factory.mktemp("cprace")
    catcher = build_static(CATCHER, base / "bin" / "catcher")
    with engine(base, f"pq-sec-cp-{os.getpid()}") as p:
        p.ok("import", str(image_tar(base / "img", {"/usr/bin/catcher": catcher})), "cc:latest")
        yield p


def _wait_for_log(pq: Portique, cid: str, text: str, timeout: float = 60) -> str:
    import time

    deadline = time.monotonic() + timeout
    while True:
        out = pq.ok("logs", cid)
        if text in out:
            return out
        assert time.monotonic() < deadline, f"no {text!r} in the container's log: {out}"
        time.sleep(0.05)


@pytest.mark.parametrize("into", ["file", "dir"])
def test_cp_in_never_opens_a_planted_fifo(pq: Portique, tmp_path: Path, into: str) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is needed to widen the race (scripts/setup.sh installs it)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "secret.txt").write_text("the user's data\n")
    cid = pq.ok("run", "-d", "cc", "sh", "-c", "mkdir /in && exec catcher /in secret.txt").strip()
    _wait_for_log(pq, cid, "planted")
    source = str(src / "secret.txt") if into == "file" else f"{src}/."
    dest = f"{cid}:/in/secret.txt" if into == "file" else f"{cid}:/in"
    try:
        cp = subprocess.run(
            ["strace", "-f", "-qq", "-o", "/dev/null",
             "-e", "trace=unlinkat", "-e", "inject=unlinkat:delay_exit=200000",
             PORTIQUE, "cp", source, dest],
            env=pq.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("cp blocked: it opened the FIFO the container planted")
    log = pq.ok("logs", cid)
    assert "caught" not in log, f"cp wrote the user's file into the container's FIFO: {log}"
    assert cp.returncode == 0, cp.stderr
    # The file is in place, as a regular file, with the user's data.
    assert pq.ok("exec", cid, "cat", "/in/secret.txt") == "the user's data\n"
    assert pq.ok("exec", cid, "stat", "-c", "%F", "/in/secret.txt").strip() == "regular file"
    pq.ok("rm", "-f", cid)
