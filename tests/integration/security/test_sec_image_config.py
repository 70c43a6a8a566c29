"""Fields of an image's config are the image author's words, not the user's.

STOPSIGNAL: a value that is no signal ("FOO", "99") made `portique stop` fail
with an error about a --stop-signal flag nobody gave, leaving the container
running for every `stop`, `restart` or script that stops containers. Docker
stops it with SIGTERM then.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.sec_engine import engine, image_tar

# PID 1 ignores signals it has no handler for: the image's init traps TERM.
TRAP = '["sh", "-c", "trap \'exit 7\' TERM; while :; do sleep 0.1; done"]'


@pytest.mark.parametrize("stopsignal", ["FOO", "99", "0"])
def test_a_bad_image_stopsignal_does_not_make_a_container_unstoppable(
    tmp_path: Path, stopsignal: str
) -> None:
    with engine(tmp_path, f"pq-sec-sig-{os.getpid()}") as pq:
        pq.ok(
            "import", "--change", f"STOPSIGNAL {stopsignal}", "--change", f"CMD {TRAP}",
            str(image_tar(tmp_path / "img")), "sig:latest",
        )  # fmt: skip
        cid = pq.ok("run", "-d", "sig").strip()
        p = pq("stop", "-t", "30", cid)
        assert p.returncode == 0, p.stderr
        assert pq.inspect(cid, "{{.State.Status}}") == "exited"
        # Its TERM trap ran (7), not the SIGKILL after the timeout (137).
        assert pq.inspect(cid, "{{.State.ExitCode}}") == "7"
