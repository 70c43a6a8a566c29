"""`portique --help` and the management groups' --help list their commands,
grouped as Docker's (issue 13, item 4); `search` says in one line that no
registry index is configured; `container port` is there."""

from __future__ import annotations

import re

from support.engine_cli import Portique

# Docker's own listings (docker CLI 28), less what portique leaves to others
# (swarm, plugins, contexts, checkpoints, manifests, trust).
COMMON = ["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout",
          "search", "version", "info"]  # fmt: skip
MANAGEMENT = ["builder", "container", "image", "network", "system", "volume"]
GROUPS = {
    "container": ["attach", "commit", "cp", "create", "diff", "exec", "export", "inspect",
                  "kill", "logs", "ls", "pause", "port", "prune", "rename", "restart", "rm",
                  "run", "start", "stats", "stop", "top", "unpause", "update", "wait"],
    "image": ["build", "history", "import", "inspect", "load", "ls", "prune", "pull", "push",
              "rm", "save", "tag"],
    "volume": ["create", "inspect", "ls", "prune", "rm"],
    "network": ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"],
    "builder": ["build", "prune"],
}  # fmt: skip


def _section(text: str, title: str) -> list[str]:
    block = ("\n" + text).split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines()]


def test_main_help_groups_commands_as_docker(pq: Portique) -> None:
    for argv in (["--help"], ["-h"], []):
        r = pq(*argv)
        assert r.returncode == 0, r.stderr
        assert _section(r.stdout, "Common Commands") == COMMON
        assert _section(r.stdout, "Management Commands") == MANAGEMENT
        commands = _section(r.stdout, "Commands")
        for verb in ("commit", "diff", "update", "cp", "rmi", "wait"):
            assert verb in commands
        assert commands == sorted(commands)
        # Every listed verb answers --help (none is a dead entry).
        for verb in commands[:3]:
            assert pq(verb, "--help").returncode == 0


def test_group_help_lists_the_groups_commands(pq: Portique) -> None:
    for group, expected in GROUPS.items():
        for argv in ([group, "--help"], [group]):
            r = pq(*argv)
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith(f"Usage:  portique {group} COMMAND\n")
            assert _section(r.stdout, "Commands") == expected, group
    system = _section(pq.ok("system", "--help"), "Commands")
    assert {"df", "info", "prune"} <= set(system)


def test_search_says_no_index_is_configured(pq: Portique) -> None:
    r = pq("search", "busybox")
    assert r.returncode == 1
    assert r.stdout == ""
    assert re.fullmatch(r"portique: .*no registry index is configured.*\n", r.stderr), r.stderr


def test_container_port(pq: Portique) -> None:
    cid = pq.ok("create", "busybox", "true").strip()
    try:
        r = pq("container", "port", cid)
        assert (r.returncode, r.stdout) == (0, pq.ok("port", cid))
        missing = pq("container", "port", "nosuch")
        assert (missing.returncode, missing.stderr) == (1, "Error: No such container: nosuch\n")
    finally:
        pq.ok("rm", cid)
