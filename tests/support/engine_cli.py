"""The engine tests' CLI runner (the `pq` fixture of integration/engine/conftest.py):
runs the installed `portique` with the test's own engine root."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PORTIQUE = str(Path(sys.executable).parent / "portique")


@dataclass
class Portique:
    env: dict[str, str]
    root: Path
    run_root: Path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [PORTIQUE, *args],
            env=self.env,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"portique {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    @property
    def argv(self) -> list[str]:
        return [PORTIQUE]

    def ok(self, *args: str, timeout: float = 60, cwd: Path | None = None) -> str:
        return self(*args, timeout=timeout, check=True, cwd=cwd).stdout

    def inspect(self, ref: str, template: str) -> str:
        return self.ok("inspect", "-f", template, ref).strip()
