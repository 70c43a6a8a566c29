#!/bin/sh
# Install everything portique and its tests need on Debian 12, as root.
# Idempotent: a second run changes nothing and takes a few seconds.
#   scripts/setup.sh            install, then run a first container
#   scripts/setup.sh --no-demo  install only (what .ci/run uses)
set -eu
cd "$(dirname "$0")/.."
TOP=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run me as root (containers need root here)" >&2
    exit 1
fi

# Debian packages: the seccomp binding, busybox for test images, the local
# registry, peers for the benchmarks, and the tools the tests drive (gcc and
# libc6-dev build the tests' static probe, tests/support/confprobe.c).
PKGS="python3 python3-venv python3-dev python3-seccomp libseccomp2 busybox-static
      gcc libc6-dev
      docker-registry apache2-utils iproute2 nftables iptables tmux jq zstd
      hyperfine runc crun skopeo umoci xz-utils qemu-system-x86 tini iperf3 containerd buildah"
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
for tool in portique portique-runtime; do
    ln -sf "$TOP/.venv/bin/$tool" "/usr/local/bin/$tool"
done

case "${1:-}" in
    --no-demo) exit 0 ;;
esac
exec "$TOP/scripts/demo.sh"
