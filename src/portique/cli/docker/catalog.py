"""What `portique --help` and `portique GROUP --help` list, grouped as Docker's.

One table per listing: (command, the module that must exist for it to be
listed, what it does). A command whose module is not in this tree (one a
branch has not added yet) is left out, so the listing never names a verb
that answers "is not a portique command". Descriptions are Docker's where
the command is Docker's.
"""

from __future__ import annotations

import importlib.util
from typing import Final

Entry = tuple[str, str, str]

_ATTACH = "Attach local standard input, output, and error streams to a running container"
_WAIT = "Block until one or more containers stop, then print their exit codes"
_IMPORT = "Import the contents from a tarball to create a filesystem image"
_SAVE = "Save one or more images to a tar archive (streamed to STDOUT by default)"

COMMON: Final[tuple[Entry, ...]] = (
    ("run", "run", "Create and run a new container from an image"),
    ("exec", "exec", "Execute a command in a running container"),
    ("ps", "ps", "List containers"),
    ("build", "build", "Build an image from a Dockerfile"),
    ("pull", "pull", "Download an image from a registry"),
    ("push", "push", "Upload an image to a registry"),
    ("images", "image", "List images"),
    ("login", "login", "Authenticate to a registry"),
    ("logout", "logout", "Log out from a registry"),
    ("search", "search", "Search Docker Hub for images"),
    ("version", "version", "Show the portique version information"),
    ("info", "info", "Display system-wide information"),
)

MANAGEMENT: Final[tuple[Entry, ...]] = (
    ("builder", "builder", "Manage builds"),
    ("container", "container", "Manage containers"),
    ("image", "image", "Manage images"),
    ("network", "network", "Manage networks"),
    ("system", "system", "Manage portique"),
    ("volume", "volume", "Manage volumes"),
)

COMMANDS: Final[tuple[Entry, ...]] = (
    ("attach", "attach", _ATTACH),
    ("commit", "commit", "Create a new image from a container's changes"),
    ("cp", "cp", "Copy files/folders between a container and the local filesystem"),
    ("create", "create", "Create a new container"),
    ("diff", "diff", "Inspect changes to files or directories on a container's filesystem"),
    ("events", "events", "Get real time events from the server"),
    ("explain", "explain", "Show where a running container is less confined than by default"),
    ("export", "export", "Export a container's filesystem as a tar archive"),
    ("history", "history", "Show the history of an image"),
    ("import", "import", _IMPORT),
    ("inspect", "inspect", "Return low-level information on portique objects"),
    ("kill", "kill", "Kill one or more running containers"),
    ("load", "load", "Load an image from a tar archive or STDIN"),
    ("logs", "logs", "Fetch the logs of a container"),
    ("pause", "pause", "Pause all processes within one or more containers"),
    ("port", "port", "List port mappings or a specific mapping for the container"),
    ("rename", "rename", "Rename a container"),
    ("restart", "restart", "Restart one or more containers"),
    ("rm", "rm", "Remove one or more containers"),
    ("rmi", "image", "Remove one or more images"),
    ("save", "save", _SAVE),
    ("start", "start", "Start one or more stopped containers"),
    ("stats", "stats", "Display a live stream of container(s) resource usage statistics"),
    ("stop", "stop", "Stop one or more running containers"),
    ("tag", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    ("top", "top", "Display the running processes of a container"),
    ("unpause", "unpause", "Unpause all processes within one or more containers"),
    ("update", "update", "Update configuration of one or more containers"),
    ("wait", "wait", _WAIT),
)

GROUPS: Final[dict[str, tuple[str, tuple[Entry, ...]]]] = {
    "container": (
        "Manage containers",
        (
            ("attach", "attach", _ATTACH),
            ("commit", "commit", "Create a new image from a container's changes"),
            ("cp", "cp", "Copy files/folders between a container and the local filesystem"),
            ("create", "create", "Create a new container"),
            ("diff", "diff", "Inspect changes to files or directories on a container's filesystem"),
            ("exec", "exec", "Execute a command in a running container"),
            ("export", "export", "Export a container's filesystem as a tar archive"),
            ("inspect", "inspect", "Display detailed information on one or more containers"),
            ("kill", "kill", "Kill one or more running containers"),
            ("logs", "logs", "Fetch the logs of a container"),
            ("ls", "ps", "List containers"),
            ("pause", "pause", "Pause all processes within one or more containers"),
            ("port", "port", "List port mappings or a specific mapping for the container"),
            ("prune", "container", "Remove all stopped containers"),
            ("rename", "rename", "Rename a container"),
            ("restart", "restart", "Restart one or more containers"),
            ("rm", "rm", "Remove one or more containers"),
            ("run", "run", "Create and run a new container from an image"),
            ("start", "start", "Start one or more stopped containers"),
            ("stats", "stats", "Display a live stream of container(s) resource usage statistics"),
            ("stop", "stop", "Stop one or more running containers"),
            ("top", "top", "Display the running processes of a container"),
            ("unpause", "unpause", "Unpause all processes within one or more containers"),
            ("update", "update", "Update configuration of one or more containers"),
            ("wait", "wait", _WAIT),
        ),
    ),
    "image": (
        "Manage images",
        (
            ("build", "build", "Build an image from a Dockerfile"),
            ("history", "history", "Show the history of an image"),
            ("import", "import", _IMPORT),
            ("inspect", "image", "Display detailed information on one or more images"),
            ("load", "load", "Load an image from a tar archive or STDIN"),
            ("ls", "image", "List images"),
            ("prune", "image", "Remove unused images"),
            ("pull", "pull", "Download an image from a registry"),
            ("push", "push", "Upload an image to a registry"),
            ("rm", "image", "Remove one or more images"),
            ("save", "save", _SAVE),
            ("tag", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
        ),
    ),
    "volume": (
        "Manage volumes",
        (
            ("create", "volume", "Create a volume"),
            ("inspect", "volume", "Display detailed information on one or more volumes"),
            ("ls", "volume", "List volumes"),
            ("prune", "volume", "Remove unused local volumes"),
            ("rm", "volume", "Remove one or more volumes"),
        ),
    ),
    "network": (
        "Manage networks",
        (
            ("connect", "network", "Connect a container to a network"),
            ("create", "network", "Create a network"),
            ("disconnect", "network", "Disconnect a container from a network"),
            ("inspect", "network", "Display detailed information on one or more networks"),
            ("ls", "network", "List networks"),
            ("prune", "network", "Remove all unused networks"),
            ("rm", "network", "Remove one or more networks"),
        ),
    ),
    "system": (
        "Manage portique",
        (
            ("df", "system", "Show portique disk usage"),
            ("events", "events", "Get real time events from the server"),
            ("info", "info", "Display system-wide information"),
            (
                "migrate",
                "system",
                "Restart a rootless engine's user namespace (after /etc/subuid changed)",
            ),
            ("prune", "system", "Remove unused data"),
        ),
    ),
    "builder": (
        "Manage builds",
        (
            ("build", "build", "Build an image from a Dockerfile"),
            ("prune", "builder", "Remove build cache"),
        ),
    ),
}

GLOBAL_OPTIONS: Final = """Global Options:
  -D, --debug            Enable debug mode (tracebacks with errors)
  -H, --host list        Daemon socket to connect to (refused: portique runs each command itself)
      --root string      Root of persistent state (default "/var/lib/portique", $PORTIQUE_ROOT)
      --runroot string   Root of run-time state (default "/run/portique", $PORTIQUE_RUNROOT)
  -v, --version          Print version information and quit
"""


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"portique.cli.docker.commands.{module}") is not None


def _section(title: str, entries: tuple[Entry, ...]) -> str:
    shown = [(name, text) for name, module, text in entries if _available(module)]
    width = max(12, *(len(n) + 2 for n, _ in shown)) if shown else 12
    return f"{title}:\n" + "".join(f"  {n:<{width}}{t}\n" for n, t in shown)


def main_help() -> str:
    return (
        "Usage:  portique [OPTIONS] COMMAND\n\n"
        "A container engine with Docker's commands, daemonless\n\n"
        + _section("Common Commands", COMMON)
        + "\n"
        + _section("Management Commands", MANAGEMENT)
        + "\n"
        + _section("Commands", COMMANDS)
        + "\n"
        + GLOBAL_OPTIONS
        + "\nRun 'portique COMMAND --help' for more information on a command.\n"
    )


def group_help(group: str) -> str:
    title, entries = GROUPS[group]
    return (
        f"Usage:  portique {group} COMMAND\n\n{title}\n\n"
        + _section("Commands", entries)
        + f"\nRun 'portique {group} COMMAND --help' for more information on a command.\n"
    )
