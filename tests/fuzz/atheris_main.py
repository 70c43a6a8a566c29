"""Coverage-guided fuzzing of one target with atheris (libFuzzer).

    .venv/bin/python tests/fuzz/atheris_main.py TARGET [libFuzzer flags]
    .venv/bin/python tests/fuzz/atheris_main.py dns -max_total_time=600

The corpus of the tree (tests/fuzz/corpus/TARGET) seeds the run; inputs
libFuzzer finds interesting go to a scratch directory (FUZZ_WORKDIR, else a
new one under /tmp), never into the tree, and so do crash files: a crash
worth keeping is copied into the corpus by hand, named after what it broke.
A target's Finding or any exception but its documented error is a crash.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "src")]

with atheris.instrument_imports(include=["portique"]):
    # The targets import lazily: import here what they use, so it is instrumented.
    import portique.build.dockerfile
    import portique.build.metadata
    import portique.build.stages
    import portique.duration
    import portique.image.compression
    import portique.image.importer
    import portique.image.tarreader
    import portique.image.unpack
    import portique.network.dns
    import portique.network.dnsserver
    import portique.oci.image
    import portique.oci.runtime  # (with oci.resources and oci.seccomp)
    import portique.words  # noqa: F401
    from fuzz import targets

# libFuzzer bounds memory (-rss_limit_mb) and time (-timeout) itself.
targets.NATIVE_LIMITS = True


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer flags]")
    name = argv[1]
    target = targets.TARGETS[name]
    work = Path(os.environ.get("FUZZ_WORKDIR") or tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    flags = [a for a in argv[2:] if a.startswith("-")]
    if not any(f.startswith("-artifact_prefix=") for f in flags):
        flags.append(f"-artifact_prefix={work}/")
    defaults = {"-max_len=": "8192", "-timeout=": "60", "-rss_limit_mb=": "2048"}
    for flag, value in defaults.items():
        if not any(f.startswith(flag) for f in flags):
            flags.append(flag + value)
    # New inputs go to the first directory (scratch); the tree's corpus is read only.
    args = [argv[0], *flags, str(work / "corpus"), str(targets.CORPUS / name)]
    print(f"fuzzing {name}: scratch corpus and crashes in {work}", file=sys.stderr)
    atheris.Setup(args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
