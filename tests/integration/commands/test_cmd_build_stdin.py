"""build from stdin and its flags (issue 13, item 9): `-f -`, a Dockerfile
alone on stdin, a tar context through a pipe, --pull=false, --add-host,
--cache-from, --shm-size, --ulimit, -m."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.engine_cli import PORTIQUE, Portique


def test_dockerfile_from_stdin_with_a_context(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from the context\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN false\n")  # not the one used
    out = pq("build", "-f", "-", "-t", "stdin-df", str(tmp_path),
             input="FROM busybox\nCOPY data.txt /data.txt\n", timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert pq.ok("run", "--rm", "stdin-df", "cat", "/data.txt") == "from the context\n"
    both = pq("build", "-f", "-", "-", input="FROM busybox\n")
    assert both.returncode == 125
    assert both.stderr.count("\n") == 1


def test_dockerfile_alone_on_stdin(pq: Portique) -> None:
    out = pq(
        "build", "-t", "stdin-alone", "-", input="FROM busybox\nRUN echo alone > /a\n", timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert pq.ok("run", "--rm", "stdin-alone", "cat", "/a") == "alone\n"


def test_tar_context_through_a_pipe(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY piped.txt /piped.txt\n")
    (tmp_path / "piped.txt").write_text("through a pipe\n")
    tar = subprocess.Popen(["tar", "-C", str(tmp_path), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    build = subprocess.run(
        [PORTIQUE, "build", "-t", "piped", "-"], stdin=tar.stdout, env=pq.env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    tar.stdout.close()
    assert tar.wait() == 0
    assert build.returncode == 0, build.stderr
    assert pq.ok("run", "--rm", "piped", "cat", "/piped.txt") == "through a pipe\n"
    # gzip'd through a pipe too
    gz = subprocess.Popen(["tar", "-C", str(tmp_path), "-cz", "."], stdout=subprocess.PIPE)
    assert gz.stdout is not None
    build = subprocess.run(
        [PORTIQUE, "build", "-q", "-"], stdin=gz.stdout, env=pq.env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    gz.stdout.close()
    assert gz.wait() == 0
    assert build.returncode == 0, build.stderr


def test_run_step_flags(pq: Portique, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN grep myhost /etc/hosts > /hosts.txt; ulimit -n > /nofile; ulimit -Hn >> /nofile;"
        " df -k /dev/shm | tail -1 | awk '{print $2}' > /shm;"
        " cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max"
        " 2>/dev/null | head -1 > /mem\n"
    )
    pq.ok("build", "--pull=false", "--add-host", "myhost:10.1.2.3", "--ulimit", "nofile=512:1024",
          "--shm-size", "8m", "-m", "64m", "-t", "flags", str(tmp_path), timeout=300)  # fmt: skip
    got = pq.ok("run", "--rm", "flags", "sh", "-c", "cat /hosts.txt /nofile /shm /mem")
    assert got.split("\n")[:5] == ["10.1.2.3\tmyhost", "512", "1024", "8192", str(64 << 20)], got
    # The /etc/hosts the step saw is no content of its layer.
    assert _last_layer(pq, "flags", tmp_path) == ["hosts.txt", "mem", "nofile", "shm"]
    bad = pq("build", "--add-host", "nocolon", str(tmp_path))
    assert bad.returncode == 125, bad.stderr
    assert bad.stderr.count("\n") == 1, bad.stderr
    missing = pq("build", "--pull=false", "-", input="FROM not-here-image:1\n")
    assert missing.returncode != 0


def _last_layer(pq: Portique, image: str, tmp: Path) -> list[str]:
    import io
    import json
    import tarfile

    pq.ok("save", "-o", str(tmp / "saved.tar"), image)
    with tarfile.open(tmp / "saved.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        f = tar.extractfile(manifest[0]["Layers"][-1])
        assert f is not None
        data = f.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        return sorted(m.name.rstrip("/") for m in layer.getmembers())


def test_cache_from_reuses_a_run_step(pq: Portique, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\n"
    (tmp_path / "Dockerfile").write_text(dockerfile)
    pq.ok("build", "-t", "cf-src", str(tmp_path), timeout=300)
    original = pq.ok("run", "--rm", "cf-src", "cat", "/id")
    pq.ok("builder", "prune", "-a", "-f")  # the local cache is gone ...
    out = pq.ok("build", "--cache-from", "cf-src", "-t", "cf-new", str(tmp_path), timeout=300)
    assert "Using cache" in out  # ... the image's history stands in for it
    assert pq.ok("run", "--rm", "cf-new", "cat", "/id") == original
    pq.ok("builder", "prune", "-a", "-f")
    out = pq.ok("build", "-t", "cf-new2", str(tmp_path), timeout=300)
    assert "Using cache" not in out
    assert pq.ok("run", "--rm", "cf-new2", "cat", "/id") != original
