#!/bin/bash
# The test command (README): unit tests, integration tests as root on this
# host, then the cgroup integration tests inside a pure cgroup v2 VM.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
status=0
"$PY" -m pytest -q tests/unit tests/integration "$@" || status=$?
# Pure cgroup v2 kernel (this host is v1 hybrid): ../shared/vm/run-in-vm.sh.
VM=${PORTIQUE_VM_SCRIPT:-$PWD/../shared/vm/run-in-vm.sh}
if [ -z "${PORTIQUE_NO_VM:-}" ] && [ $# -eq 0 ]; then
    if [ ! -x "$VM" ]; then
        echo "test.sh: $VM is missing: cannot run the cgroup v2 tests" >&2
        status=1
    else
        VMLAB_RW="$PWD" VMLAB_TMPFS="/var/lib/portique /run/portique" VMLAB_MEM=2048 \
            "$VM" "cd $PWD && $PY -m pytest -q -p no:cacheprovider -m vm tests/integration" || status=$?
    fi
fi
exit $status
