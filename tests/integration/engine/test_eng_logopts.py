"""Issue 13 item 5: --log-driver json-file|local|none and --log-opt max-size/max-file."""

from __future__ import annotations

import time
from pathlib import Path

from support.engine_cli import Portique


def _wait_exit(pq: Portique, cid: str) -> None:
    deadline = time.monotonic() + 60
    while pq.inspect(cid, "{{.State.Status}}") != "exited":
        assert time.monotonic() < deadline, "container did not exit"
        time.sleep(0.05)


def test_log_rotation_keeps_max_file_files_of_max_size(pq: Portique) -> None:
    # 400 lines of ~100 bytes of JSON each: ~40 KB through a 4 KB file, 3 files kept.
    cid = pq.ok(
        "run", "-d", "--network", "none", "--log-opt", "max-size=4k", "--log-opt", "max-file=3",
        "busybox", "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done",
    ).strip()  # fmt: skip
    _wait_exit(pq, cid)
    log = Path(pq.inspect(cid, "{{.LogPath}}"))
    files = sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name))
    assert files == [log.name, f"{log.name}.1", f"{log.name}.2"]
    for name in files:
        assert (log.parent / name).stat().st_size <= 4096
    out = pq.ok("logs", cid).splitlines()
    # The oldest lines went with the rotated-out files; the newest are all there, in order.
    assert out[-1] == "line-399"
    assert 40 <= len(out) < 400
    assert out == [f"line-{i}" for i in range(400 - len(out), 400)]
    assert pq.ok("logs", "--tail", "5", cid).splitlines() == [f"line-{i}" for i in range(395, 400)]
    assert pq.inspect(cid, "{{.HostConfig.LogConfig.Config}}") == "map[max-file:3 max-size:4k]"
    pq.ok("rm", cid)


def test_log_driver_none_keeps_nothing(pq: Portique) -> None:
    cid = pq.ok("run", "-d", "--network", "none", "--log-driver", "none", "busybox", "echo",
                "secret").strip()  # fmt: skip
    _wait_exit(pq, cid)
    p = pq("logs", cid)
    assert p.returncode != 0
    assert "does not support reading" in p.stderr
    log = Path(pq.inspect(cid, "{{.LogPath}}"))
    assert not log.exists() or b"secret" not in log.read_bytes()
    out = pq.ok("run", "--rm", "--network", "none", "--log-driver", "local", "busybox", "echo",
                "hi")  # fmt: skip
    assert out == "hi\n"
    for bad in (["--log-opt", "max-file=2"], ["--log-opt", "max-size=x"],
                ["--log-driver", "none", "--log-opt", "max-size=1m"]):  # fmt: skip
        p = pq("run", "--rm", *bad, "busybox", "true")
        assert p.returncode == 125, bad
    pq.ok("rm", cid)
