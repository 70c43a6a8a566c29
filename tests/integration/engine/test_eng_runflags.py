"""Issue 13 items 5 and 7: the run/create flags Docker users reach for, each
checked in the kernel's own view from inside the container (/proc, sysfs,
mountinfo) and relative bind sources (docker CLI 23+)."""

from __future__ import annotations

from pathlib import Path

from support.engine_cli import Portique


def test_relative_bind_sources_resolve_against_cwd(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("in data\n")
    (tmp_path / "top").write_text("at top\n")
    out = pq.ok(
        "run", "--rm", "--network", "none",
        "-v", ".:/src",
        "-v", "./data:/data:ro",
        "--mount", "type=bind,src=./data,dst=/m",
        "busybox", "sh", "-c", "cat /src/top /data/f /m/f",
        cwd=tmp_path,
    )  # fmt: skip
    assert out == "at top\nin data\nin data\n"
    row = pq.ok(
        "create", "-v", "./data:/data", "--mount", "type=bind,source=.,target=/t", "busybox",
        cwd=tmp_path,
    ).strip()  # fmt: skip
    binds = pq.inspect(row, "{{json .HostConfig.Binds}}")
    assert binds == f'["{tmp_path}/data:/data"]'
    assert pq.inspect(row, "{{(index .HostConfig.Mounts 0).Source}}") == str(tmp_path)
    pq.ok("rm", row)
    # A bare word is still a volume name, as with Docker.
    p = pq("run", "--rm", "-v", "data/x:/x", "busybox", "true", cwd=tmp_path)
    assert p.returncode == 125
