#!/usr/bin/env python3
"""Run the guide's commands and put their real output in the guide.

    sudo .venv/bin/python docs/guide/guide.py            # rewrite the outputs in place
    sudo .venv/bin/python docs/guide/guide.py --check    # compare instead (what the test does)

The guide exists in English (en.md) and French (fr.md) with the same
`console` blocks: a line `$ command` is run with bash, and the lines after
it, up to the next `$` line or the end of the block, are its output. The
commands run in order, in one engine root of their own (never the machine's
/var/lib/portique), whose paths are shown as the defaults a learner has:
/var/lib/portique and /run/portique.

--check runs everything again and compares each output with the guide's
text modulo what changes from run to run (`normalise`): ids, numbers,
addresses, sizes, times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUIDES = (HERE / "en.md", HERE / "fr.md")
SHOWN_ROOT, SHOWN_RUNROOT = "/var/lib/portique", "/run/portique"


@dataclass
class Step:
    command: str
    output: str  # as the guide shows it


def parse(text: str) -> list[Step]:
    steps: list[Step] = []
    in_block = False
    for line in text.splitlines():
        if line.startswith("```console"):
            in_block = True
            continue
        if in_block and line.startswith("```"):
            in_block = False
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            steps.append(Step(line[2:], ""))
        elif steps:
            steps[-1].output += line + "\n"
    return steps


def render(text: str, outputs: list[str]) -> str:
    """`text` with each console block's outputs replaced, in order."""
    out: list[str] = []
    queue = iter(outputs)
    in_block = False
    for line in text.splitlines():
        if line.startswith("```console"):
            in_block = True
            out.append(line)
            continue
        if in_block and line.startswith("```"):
            in_block = False
            out.append(line)
            continue
        if in_block:
            if line.startswith("$ "):
                out.append(line)
                out.extend(next(queue).splitlines())
            continue  # old output lines are dropped
        out.append(line)
    return "\n".join(out) + "\n"


class Session:
    """A private engine root and a bash to run the guide's commands in."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.run_root = Path(f"/run/pq-guide-{os.getpid()}")
        venv_bin = str(Path(sys.executable).parent)
        self.env = dict(
            os.environ,
            PORTIQUE_ROOT=str(self.root),
            PORTIQUE_RUNROOT=str(self.run_root),
            PATH=f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            LC_ALL="C",
            COLUMNS="100",
        )
        self.cwd = HERE.parent.parent  # the repository: `scripts/demo.sh` works

    def run(self, command: str) -> str:
        proc = subprocess.run(
            ["bash", "-c", command],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        from portique.network.firewall import table_name

        text = proc.stdout.replace(str(self.root), SHOWN_ROOT)
        text = text.replace(str(self.run_root), SHOWN_RUNROOT)
        # nftables tables are named after the engine root: show the default's.
        return text.replace(table_name(self.root), "portique")

    def close(self) -> None:
        ids = self.run("portique ps -aq --no-trunc").split()
        if ids:
            self.run("portique rm -f " + " ".join(ids))
        from portique.network.networks import Networks

        nets = Networks(self.root, run_root=self.run_root)
        try:
            nets.destroy()
        finally:
            nets.close()
        shutil.rmtree(self.run_root, ignore_errors=True)


_RULES: list[tuple[str, str]] = [
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
    (r"\b(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b", "<mac>"),
    (r"\b[0-9a-f]{12,64}\b", "<id>"),
    (r"\bsha256:<id>", "<digest>"),
    (r"\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:/\d+)?", "<ipv6>"),
    (r"\b\d+\.\d+\.\d+-\S+", "<kernel release>"),
    (r"\d+(?:\.\d+)? ?(?:B|KiB|MiB|GiB|kB|MB|GB)\b", "<size>"),
    (r"\d+(?:\.\d+)?(?:ms|s)\b", "<time>"),
    (r"\d+", "<n>"),
    (r"[ \t]+", " "),
]


def normalise(text: str) -> str:
    """What stays the same from run to run: words, structure, verdicts."""
    out = []
    for line in text.splitlines():
        for pattern, repl in _RULES:
            line = re.sub(pattern, repl, line)
        out.append(line.strip())
    return "\n".join(out).strip() + "\n"


def run_guide(base: Path) -> tuple[list[Step], list[str]]:
    """The steps of en.md and the output each gives now; fr.md must run the same."""
    steps = parse(GUIDES[0].read_text())
    other = [s.command for s in parse(GUIDES[1].read_text())]
    if other != [s.command for s in steps]:
        raise SystemExit("guide: en.md and fr.md do not run the same commands")
    session = Session(base)
    try:
        outputs = [session.run(s.command) for s in steps]
    finally:
        session.close()
    return steps, outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of rewriting")
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pq-guide-") as tmp:
        steps, outputs = run_guide(Path(tmp))
    if args.check:
        bad = [
            s.command
            for s, now in zip(steps, outputs, strict=True)
            if normalise(s.output) != normalise(now)
        ]
        for command in bad:
            print(f"guide: the output of `{command}` changed", file=sys.stderr)
        return 1 if bad else 0
    for guide in GUIDES:
        guide.write_text(render(guide.read_text(), outputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
