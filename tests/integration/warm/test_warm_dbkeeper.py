"""The warm server's database keeper (portique/warm/dbkeeper.py): while a server
runs, a process of its own holds the engine's database open, so that no
command closing its connection is the last one (which would checkpoint the
WAL, fsync twice and delete it at the end of every command); it leaves with
the server."""

from __future__ import annotations

import os
import select
from pathlib import Path

from portique.warm.dbkeeper import COMM
from support.warm import Modes, holders


def keepers_of(database: Path) -> list[int]:
    def keeper(pid: str) -> bool:
        return Path(f"/proc/{pid}/comm").read_text().strip() == COMM

    return holders(lambda target: target == str(database), keeper)


def test_keeper_holds_the_database_while_the_server_runs(modes: Modes) -> None:
    database = modes.warm.root / "portique.db"
    (keeper,) = keepers_of(database)
    out = modes.warm("ps", "-a")
    assert out.returncode == 0, out.stderr
    # The command's connection was not the last: the WAL survives its close.
    assert Path(f"{database}-wal").exists()
    # A keeper is not the server's child (the server tracks only its workers)
    # and holds none of the server's fds but its pipe and /dev/null.
    assert keeper not in {int(c) for c in _children(modes.server_pid())}
    held = {os.readlink(f"/proc/{keeper}/fd/{fd}") for fd in os.listdir(f"/proc/{keeper}/fd")}
    assert not any(h.endswith(("warm.lock", "warm.sock")) for h in held)


def test_keeper_leaves_with_the_server(modes: Modes) -> None:
    database = modes.warm.root / "portique.db"
    (keeper,) = keepers_of(database)
    pidfd = os.pidfd_open(keeper)
    try:
        modes.stop()
        ready, _, _ = select.select([pidfd], [], [], 60)
        assert ready, "the keeper outlived its server"
    finally:
        os.close(pidfd)
        modes.start()
    assert len(keepers_of(database)) == 1  # the new server's


def _children(pid: int | None) -> list[str]:
    if pid is None:
        return []
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
