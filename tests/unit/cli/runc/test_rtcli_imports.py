"""What a cold `portique-runtime` imports for its hot verbs: none of the
standard modules that cost a cold start most (docs/ARCHITECTURE.md, runtime/).
A new module-level import of one of them on this path fails here."""

from __future__ import annotations

import os
import subprocess
import sys

import portique

HOT_PATH = (
    "portique.cli.runc.quick",
    "portique.cli.runc.main",
    "portique.cli.runc.fastargs",
    "portique.cli.runc.forward",
    "portique.cli.runc.signals",
    "portique.cli.runc.commands.create",
    "portique.cli.runc.commands.run",
    "portique.cli.runc.commands.start",
    "portique.cli.runc.commands.state",
    "portique.cli.runc.commands.kill",
    "portique.cli.runc.commands.delete",
    "portique.cli.runc.commands.exec_",
    "portique.cli.runc.commands.pause",
    "portique.runtime.container",
    "portique.runtime.create",
    "portique.runtime.start",
    "portique.runtime.kill",
    "portique.runtime.delete",
    "portique.runtime.pause",
    "portique.runtime.execution",
    "portique.runtime.init",
    "portique.runtime.process",
    "portique.runtime.rootfs",
    "portique.runtime.mountplan",
    "portique.runtime.devices",
    "portique.runtime.hooks",
    "portique.runtime.idmap",
    "portique.runtime.seccomp_cache",
    "portique.runtime.cgroups",
    "portique.runtime.cgroups.v1",
    "portique.runtime.cgroups.v2",
    "portique.runtime.cgroups.none",
    "portique.oci.runtime",
    "portique.oci.seccomp",
    "portique.linux.kernel",
    "portique.linux.bpf",
    "portique.linux.seccomp",
    "portique.linux.selfexe",
)
# Each costs a cold call 0.5-9 ms (with what it brings: re, enum, gettext,
# urllib.parse...), and the runtime has a cheaper way for what it needs.
COSTLY = (
    "argparse",
    "typing",
    "pathlib",
    "json",
    "re",
    "enum",
    "signal",
    "contextlib",
    "collections",
    "functools",
    "dataclasses",
    "subprocess",
    "shutil",
)


def test_hot_path_imports_none_of_the_costly_modules() -> None:
    src = os.path.dirname(os.path.dirname(portique.__file__))
    code = (
        "import sys\n"
        f"sys.path.append({src!r})\n"
        f"for name in {HOT_PATH!r}:\n"
        "    __import__(name)\n"
        f"print(' '.join(m for m in {COSTLY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []
