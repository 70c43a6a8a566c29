"""runtime/process.py and init.py through the in-memory kernel: ids, groups,
capabilities, rlimits and the session keyring, in the order the kernel needs."""

from __future__ import annotations

import errno
import resource
from typing import Any

import pytest

from portique.linux.caps import CAP_NUMBERS, to_mask
from portique.oci.runtime import Process, parse_process
from portique.runtime.init import join_session_keyring
from portique.runtime.process import set_credentials, set_rlimits
from support.fakekernel import FakeKernel

SYS_ADMIN = 1 << CAP_NUMBERS["CAP_SYS_ADMIN"]


def _process(**changes: Any) -> Process:
    doc: dict[str, Any] = {
        "args": ["sh"],
        "cwd": "/",
        "user": {"uid": 1000, "gid": 100, "additionalGids": [10, 20]},
        "capabilities": {
            "bounding": ["CAP_KILL", "CAP_NET_ADMIN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_NET_ADMIN"],
            "inheritable": ["CAP_NET_ADMIN"],
            "ambient": ["CAP_NET_ADMIN"],
        },
    }
    doc.update(changes)
    return parse_process(doc)


def test_bounding_first_ids_with_keepcaps_then_the_sets() -> None:
    kernel = FakeKernel()
    set_credentials(_process(), kernel, setgroups_allowed=True)
    order = [name for name, _ in kernel.calls]
    assert order == [
        "drop_bounding",
        "set_keepcaps",
        "setgroups",
        "setresgid",
        "setresuid",
        "set_keepcaps",
        "capset",
        "set_ambient",
    ]
    kill, net = to_mask(["CAP_KILL"]), to_mask(["CAP_NET_ADMIN"])
    assert kernel.bounding == kill | net
    assert (kernel.uid, kernel.gid, kernel.groups) == ((1000,) * 3, (100,) * 3, [10, 20])
    assert kernel.caps == (kill, kill | net, net)
    assert kernel.ambient == net


def test_setgroups_is_skipped_where_the_user_namespace_denies_it() -> None:
    kernel = FakeKernel()
    set_credentials(_process(), kernel, setgroups_allowed=False)
    assert kernel.named("setgroups") == []


def test_sys_admin_kept_for_a_late_seccomp_load_only_if_held() -> None:
    kernel = FakeKernel()
    set_credentials(_process(), kernel, setgroups_allowed=True, keep_sys_admin=True)
    assert kernel.caps[0] & SYS_ADMIN
    assert kernel.caps[1] & SYS_ADMIN
    kernel = FakeKernel(caps=(0, 0, 0))
    set_credentials(_process(), kernel, setgroups_allowed=True, keep_sys_admin=True)
    assert not kernel.caps[1] & SYS_ADMIN


def test_no_ambient_set_clears_it() -> None:
    kernel = FakeKernel(ambient=1)
    proc = _process(capabilities={"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]})
    set_credentials(proc, kernel, setgroups_allowed=True)
    assert kernel.named("clear_ambient") == [()]
    assert kernel.ambient == 0


def test_rlimits_and_their_refusal_named() -> None:
    kernel = FakeKernel()
    proc = _process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 2**64 - 1}])
    set_rlimits(proc, kernel)
    assert kernel.named("setrlimit") == [(resource.RLIMIT_NOFILE, 10, resource.RLIM_INFINITY)]
    kernel.fail("setrlimit", errno.EPERM)
    with pytest.raises(
        OSError, match=r"setrlimit RLIMIT_NOFILE soft=10 hard=\d+: operation not permitted"
    ):
        set_rlimits(proc, kernel)


def test_session_keyring_joined_and_a_kernel_without_keyrings_tolerated() -> None:
    kernel = FakeKernel()
    join_session_keyring(kernel)
    assert kernel.keyring == 1
    kernel.fail("join_session_keyring", errno.ENOSYS)
    join_session_keyring(kernel)  # nothing to inherit either
    kernel.fail("join_session_keyring", errno.EDQUOT)
    with pytest.raises(OSError, match="session keyring: join_session_keyring: Disk quota exceeded"):
        join_session_keyring(kernel)
