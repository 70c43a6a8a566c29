#!/bin/bash
# The test command (README): unit, fuzz, integration and compat tests as root on
# this host, the engine's suites again through the warm fork-server, then the
# cgroup integration tests (marker `vm`) again inside a
# throwaway VM with a pure cgroup v2 kernel (../shared/vm/run-in-vm.sh).
# Extra arguments are handed to pytest and skip the VM pass.
#
# The runtime's in-process suites run in a pytest process of their own: the
# runtime refuses to fork while other threads run, and other suites' session
# fixtures (the registry's token issuer, for one) keep threads alive.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
# A fresh pytest base dir per run, removed with rm -rf: some tests make trees
# deeper than pytest's own recursive clean-up can remove.
BASETEMP=$(mktemp -d /tmp/portique-tests.XXXXXX)
trap 'rm -rf "$BASETEMP"' EXIT
RUNTIME_SUITES="tests/integration/runtime_core tests/integration/runtime_cli
                tests/integration/runtime_cgroups tests/integration/runtime_seccomp"
status=0
pytest() {
    local name=$1
    shift
    echo "== $name"
    "$PY" -m pytest -q -p no:cacheprovider --basetemp="$BASETEMP/$name" "$@" || status=1
}
pytest unit tests/unit "$@"
# Fuzz targets of every hostile-input parser: the corpus replayed, then a
# derandomized hypothesis run and a seeded atheris run (tests/fuzz; ~1 min).
pytest fuzz tests/fuzz "$@"
# shellcheck disable=SC2086
pytest runtime $RUNTIME_SUITES tests/compat "$@"
ignores=()
for suite in $RUNTIME_SUITES; do ignores+=("--ignore=$suite"); done
pytest integration tests/integration "${ignores[@]}" "$@"
# The engine-level suites again with the warm fork-server on (portique/warm):
# every `portique` a test starts is run by a fork of its run root's server,
# started on demand (PORTIQUE_WARM=auto) and stopped at the session's end
# (tests/conftest.py); output and exit codes must not change.
PORTIQUE_WARM=auto PORTIQUE_WARM_IDLE=10 \
    pytest integration-warm tests/integration/engine tests/integration/commands \
    tests/integration/security "$@"
VM=${PORTIQUE_VM_SCRIPT:-$PWD/../shared/vm/run-in-vm.sh}
if [ -z "${PORTIQUE_NO_VM:-}" ] && [ $# -eq 0 ]; then
    if [ ! -f "$VM" ]; then
        echo "test.sh: $VM is missing: cannot run the cgroup v2 tests" >&2
        status=1
    else
        echo "== cgroup v2 VM: tests marked vm"
        # The guest sees .venv over 9p without setup.sh's read-only mount:
        # pytest (tests/conftest.py) and the CLIs it starts remount the marked
        # interpreter inside the guest, or run from a sealed copy of it.
        VMLAB_RW="$PWD" VMLAB_TMPFS="/var/lib/portique /run/portique" VMLAB_MEM=2048 \
            bash "$VM" "cd $PWD && $PY -m pytest -q -p no:cacheprovider --basetemp=/tmp/vm-tests -m vm tests/integration" \
            || status=1
    fi
fi
exit $status
