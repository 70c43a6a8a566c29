"""The same Dockerfiles built by `portique build` and by `buildah bud`.

buildah (Debian's) is the oracle: both builds start from the same busybox
image (made by `portique import`, handed to buildah with `portique save`),
buildah's result comes back through `buildah push docker-archive:` and
`portique load`, and the two images must agree on their config and on the
file trees the Dockerfile made (names, types, modes, owners, sizes, content).
buildah runs with a private storage (vfs driver) and runc: crun 1.8 refuses
this host's cgroup v1 hybrid layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.build_context import make_context
from support.rootfs import make_busybox_rootfs

pytestmark = [pytest.mark.compat, pytest.mark.root]

BASE = "docker.io/library/busybox:latest"
PQ = [sys.executable, "-m", "portique"]
Run = Callable[..., subprocess.CompletedProcess[str]]

DOCKERFILES = {
    "instructions": f"""\
FROM {BASE}
ARG WHO=world
ENV GREETING="hello $WHO" APP=/app
LABEL org.example.kind=compat
RUN mkdir -p $APP
WORKDIR $APP
COPY --chown=1:1 files/ ./files/
COPY --chmod=700 script.sh /usr/local/bin/script.sh
ADD data.tar.gz /opt/
RUN echo "$GREETING" > greeting.txt && mkdir -p /app/empty && chmod 751 /app/empty
RUN rm /opt/data/remove-me.txt && ln -s greeting.txt /app/link
EXPOSE 8080 53/udp
VOLUME /data
USER daemon
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting.txt"]
""",
    "multistage": f"""\
FROM {BASE} AS builder
RUN mkdir -p /out && echo built > /out/artifact && chmod 640 /out/artifact
FROM {BASE}
COPY --from=builder /out/ /srv/
RUN echo done > /srv/done
""",
}
# (`RUN mkdir` before WORKDIR: buildah 1.28 creates a missing WORKDIR only at
# the next COPY, owned by that COPY's --chown; Docker creates it root-owned.)
# Paths each Dockerfile wrote; their trees are compared.
TREES = {"instructions": ["/app", "/opt", "/usr/local/bin"], "multistage": ["/srv"]}
CONFIG_KEYS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    assert shutil.which("buildah"), "buildah is missing: scripts/setup.sh installs it"
    base = tmp_path_factory.mktemp("buildah-compat")
    pq_env = dict(
        os.environ, PORTIQUE_ROOT=str(base / "pq-root"), PORTIQUE_RUNROOT=str(base / "pq-run")
    )
    rootfs = make_busybox_rootfs(base / "busybox")
    with tarfile.open(base / "rootfs.tar", "w") as tf:
        tf.add(rootfs, arcname=".")
    subprocess.run([*PQ, "import", "--change", 'CMD ["/bin/sh"]', str(base / "rootfs.tar"), BASE],
                   env=pq_env, check=True, capture_output=True)  # fmt: skip
    subprocess.run([*PQ, "save", "-o", str(base / "base.tar"), BASE], env=pq_env, check=True)
    buildah = ["buildah", "--root", str(base / "b-root"), "--runroot", str(base / "b-run"),
               "--storage-driver", "vfs"]  # fmt: skip
    subprocess.run(
        [*buildah, "pull", f"docker-archive:{base / 'base.tar'}"], check=True, capture_output=True
    )
    # docker-archive names images in Docker's short form ("busybox:latest"),
    # which buildah reads as localhost/busybox.
    subprocess.run(
        [*buildah, "tag", "localhost/busybox:latest", BASE], check=True, capture_output=True
    )
    try:
        yield {"base": base, "env": pq_env, "buildah": buildah}
    finally:
        subprocess.run([*buildah, "rm", "--all"], capture_output=True)
        subprocess.run(["umount", "-R", str(base / "b-run")], capture_output=True)
        # This root's firewall tables and bridges (if anything made them) go with it.
        from portique.network.networks import Networks

        nets = Networks(base / "pq-root", run_root=base / "pq-run")
        try:
            nets.destroy()
        finally:
            nets.close()


def _pq(env: dict[str, Any], *args: str) -> str:
    proc = subprocess.run([*PQ, *args], env=env["env"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"portique {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _tree(env: dict[str, Any], image: str, paths: list[str]) -> list[str]:
    script = (
        f"find {' '.join(paths)} | sort | while read -r p; do "
        'if [ -f "$p" ] && [ ! -L "$p" ]; then sum=$(md5sum < "$p"); else sum=-; fi; '
        'echo "$(stat -c \'%n %F %a %u:%g\' "$p") $sum"; done'
    )
    out = _pq(env, "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "", image,
              "/bin/sh", "-c", script)  # fmt: skip
    return out.splitlines()


@pytest.mark.parametrize("case", sorted(DOCKERFILES))
def test_same_result_as_buildah(env: dict[str, Any], tmp_path: Path, case: str) -> None:
    ctx = make_context(tmp_path, DOCKERFILES[case])
    ours = f"localhost/compat-{case}:portique"
    theirs = f"localhost/compat-{case}:buildah"
    _pq(env, "build", "-q", "-t", ours, str(ctx))
    b = env["buildah"]
    built = subprocess.run(
        [*b, "bud", "--runtime", "runc", "--network", "none", "--pull=never", "--layers",
         "--format", "docker", "-q", "-t", theirs, str(ctx)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    archive = tmp_path / "theirs.tar"
    subprocess.run(
        [*b, "push", theirs, f"docker-archive:{archive}:{theirs}"], check=True, capture_output=True
    )
    _pq(env, "load", "-i", str(archive))

    ours_cfg = json.loads(_pq(env, "image", "inspect", ours))[0]["Config"]
    theirs_cfg = json.loads(_pq(env, "image", "inspect", theirs))[0]["Config"]
    for key in CONFIG_KEYS:
        assert (ours_cfg.get(key) or None) == (theirs_cfg.get(key) or None), key
    ours_labels = {
        k: v for k, v in (ours_cfg.get("Labels") or {}).items() if not k.startswith("io.buildah")
    }
    theirs_labels = {
        k: v for k, v in (theirs_cfg.get("Labels") or {}).items() if not k.startswith("io.buildah")
    }
    assert ours_labels == theirs_labels

    assert _tree(env, ours, TREES[case]) == _tree(env, theirs, TREES[case])
