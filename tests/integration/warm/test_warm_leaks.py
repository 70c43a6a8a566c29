"""1000 commands through one warm server leave it as they found it: the same fds,
no children but the monitors' zygote and one spare worker, no zombies, its
memory within a bound (and the client leaks no fd either)."""

from __future__ import annotations

import os
import time

from portique.warm import client
from portique.warm.worker import SPARE_COMM
from portique.warm.zygote import COMM
from support.warm import Modes, children, comm, describe, fd_count, rss_kib, zombies_of

REQUESTS = 1000
RSS_SLACK_KIB = 1024  # allocator noise; a leak of even 1 KiB per command would be 1000


def test_a_thousand_commands_leak_nothing(modes: Modes) -> None:
    server = modes.server_pid()
    assert server is not None
    runroot = str(modes.runroot)
    own_fds = fd_count(os.getpid())
    # Warm-up: the server's allocator reaches its steady state.
    for _ in range(50):
        assert client.run(["portique", "--version"], runroot) == 0
    wait_for_quiet(server)
    fds, rss = fd_count(server), rss_kib(server)
    zygote, _spare = idle_children(server)
    codes: dict[int | None, int] = {}
    for i in range(REQUESTS):
        argv = ["portique", "nosuch"] if i % 10 == 0 else ["portique", "--version"]
        if i % 10 == 5:
            argv = ["portique", "ps", "-aq"]
        code = client.run(argv, runroot)
        codes[code] = codes.get(code, 0) + 1
    assert codes == {0: REQUESTS - REQUESTS // 10, 125: REQUESTS // 10}
    wait_for_quiet(server)
    assert modes.server_pid() == server
    assert fd_count(server) == fds
    assert zombies_of(server) == []
    assert idle_children(server)[0] == zygote  # the same zygote; the spare is a later one
    grown = rss_kib(server) - rss
    assert grown < RSS_SLACK_KIB, f"the server grew by {grown} KiB over {REQUESTS} commands"
    assert fd_count(os.getpid()) == own_fds
    print(f"server after {REQUESTS} commands: fds {fds}, rss {rss} KiB -> {rss + grown} KiB")


IDLE = sorted([SPARE_COMM.decode(), COMM])


def idle_children(server: int) -> tuple[int, int]:
    """The zygote and the spare of a quiet server (wait_for_quiet)."""
    found = {comm(pid): pid for pid in children(server)}
    return found[COMM], found[SPARE_COMM.decode()]


def wait_for_quiet(server: int, timeout: float = 60.0) -> None:
    """Until the server's children are those of a server with no command: the
    monitors' zygote and one spare (forked a moment after the last command)."""
    deadline = time.monotonic() + timeout
    while sorted(map(comm, found := children(server))) != IDLE:
        assert time.monotonic() < deadline, f"the server's children:\n{describe(found)}"
        time.sleep(0.01)  # poll interval
