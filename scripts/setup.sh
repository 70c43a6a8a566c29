#!/bin/sh
# Install everything portique and its tests need on Debian 12, as root.
# Idempotent: a second run changes nothing and takes a few seconds.
#   scripts/setup.sh            install, then run a first container
#   scripts/setup.sh --no-demo  install only (what .ci/run uses)
#   scripts/setup.sh --uninstall  undo what stops `rm -rf` of this checkout:
#                               the read-only mount of the venv's interpreter
set -eu
cd "$(dirname "$0")/.."
TOP=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run me as root (containers need root here)" >&2
    exit 1
fi

# The venv's interpreter is a private copy of Debian's, bind-mounted read-only
# onto itself, so that no container can rewrite the interpreter that starts it
# (docs/ARCHITECTURE.md, "The interpreter"; portique/linux/selfexe.py). The
# marker lets portique, as root, make the mount again after a reboot.
PYCOPY=$(pwd -P)/.venv/bin/python3
PYMARK=$(pwd -P)/.venv/bin/.python3.portique-readonly
unmount_interpreter() {
    # Every mount stacked there, lazily: processes running the copy keep theirs.
    while awk -v p="$PYCOPY" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; do
        umount -l "$PYCOPY"
    done
}
if [ "${1:-}" = --uninstall ]; then
    rm -f "$PYMARK"
    unmount_interpreter
    if [ -f "$PYCOPY" ] && [ ! -L "$PYCOPY" ]; then
        ln -sfn /usr/bin/python3 "$PYCOPY"  # a plain venv again
    fi
    for tool in portique portique-runtime; do
        case "$(readlink "/usr/local/bin/$tool" || true)" in
            "$TOP"/*) rm -f "/usr/local/bin/$tool" ;;
        esac
    done
    echo "setup.sh: unmounted $PYCOPY; the checkout can be removed"
    exit 0
fi

# Debian packages: the seccomp binding, busybox for test images, the local
# registry, peers for the benchmarks, and the tools the tests drive (gcc and
# libc6-dev build the tests' static probe, tests/support/confprobe.c; dockerd,
# podman and containerd's CRI with the CNI bridge plugin run portique-runtime
# in tests/compat; docker-compose 1.29 drives `portique serve` in
# tests/compat/api). Their daemons are never started here: the tests start
# private ones.
PKGS="python3 python3-venv python3-dev python3-seccomp libseccomp2 busybox-static
      gcc libc6-dev
      docker-registry apache2-utils iproute2 nftables iptables tmux jq zstd
      hyperfine runc crun skopeo umoci xz-utils qemu-system-x86 tini iperf3 containerd buildah
      golang-go libcap2-bin docker.io podman containernetworking-plugins strace
      uidmap slirp4netns fuse-overlayfs
      docker-compose"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    # Keep package scripts from starting daemons (docker-registry ships a service).
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $missing
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# Rootless portique (docs/ARCHITECTURE.md, "Rootless"): the users the tests
# run it as (tests/integration/rootless), one with a subordinate range in
# /etc/subuid and /etc/subgid, one without (the single-id mapping), and
# /dev/net/tun and /dev/fuse open to every user, for slirp4netns and
# fuse-overlayfs (Debian ships both 0666; some hosts make them 0600).
if ! getent passwd portique-test >/dev/null; then
    useradd --create-home --shell /bin/sh portique-test
fi
if ! getent passwd portique-nosub >/dev/null; then
    useradd --create-home --shell /bin/sh portique-nosub
fi
for f in /etc/subuid /etc/subgid; do
    touch "$f"
    grep -q '^portique-test:' "$f" || echo 'portique-test:400000:65536' >>"$f"
    # useradd gives every new user a range when login.defs says so: not this one.
    if grep -q '^portique-nosub:' "$f"; then
        sed -i '/^portique-nosub:/d' "$f"
    fi
done
for dev in /dev/net/tun /dev/fuse; do
    if [ -c "$dev" ]; then
        chmod 0666 "$dev"
    fi
done

# Debian's own python3, so libseccomp's binding (python3-seccomp) is visible.
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.portique-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
# portique-runtime runs once per container operation (several times per
# container under containerd): replace pip's wrapper with a launcher that
# starts the interpreter without site (see portique/cli/runc/launcher.py).
# Outside the stamp check, since any reinstall rewrites pip's wrapper.
.venv/bin/python -m portique.cli.runc.launcher .venv/bin/portique-runtime
# Likewise `portique` (every docker-style command is a fresh interpreter): a
# launcher with -S and the installation's site directories baked in (see
# portique/cli/docker/launcher.py). `python -m portique` works as before.
.venv/bin/python -m portique.cli.docker.launcher .venv/bin/portique
# Byte-compile portique's modules now: a session with PYTHONDONTWRITEBYTECODE=1
# would otherwise compile every imported module from source on every command
# (~100 ms for `portique run`). Idempotent: only stale .pyc files are rewritten.
.venv/bin/python -m compileall -q -j 0 src/portique >/dev/null
PYSRC=$(readlink -f /usr/bin/python3)
if [ -L "$PYCOPY" ] || ! cmp -s "$PYSRC" "$PYCOPY"; then
    # First install, or Debian updated its python3: a fresh copy (a mount
    # point cannot be renamed over, so unmount first).
    unmount_interpreter
    cp "$PYSRC" "$PYCOPY.tmp"
    chmod 0755 "$PYCOPY.tmp"
    mv -f "$PYCOPY.tmp" "$PYCOPY"
fi
echo "portique: keep $PYCOPY read-only (scripts/setup.sh --uninstall undoes it)" >"$PYMARK"
# Where mounts are not allowed (an unprivileged container), portique still
# runs safely, from a sealed in-memory copy: say so and go on.
.venv/bin/python -c 'import sys
from portique.linux.selfexe import mount_read_only
try:
    mount_read_only(sys.argv[1])
except OSError as e:
    sys.exit(f"setup.sh: cannot mount {sys.argv[1]} read-only ({e.strerror}): "
             "portique will start containers from a sealed copy of it (~13 ms more per command)")' \
    "$PYCOPY" || true
for tool in portique portique-runtime; do
    ln -sf "$TOP/.venv/bin/$tool" "/usr/local/bin/$tool"
done

case "${1:-}" in
    --no-demo) exit 0 ;;
esac
exec "$TOP/scripts/demo.sh"
