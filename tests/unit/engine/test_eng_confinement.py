"""The default container's confinement, pinned: `portique run`'s config.json
must not change now that its confinement comes from runtime/confinement.py,
and a Dockerfile RUN step (build/step.py) must get the very same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portique.build.step import step_spec
from portique.engine import config as cfg
from portique.engine import options as opt
from portique.engine.bundle import seccomp_for
from portique.engine.userdb import ResolvedUser
from portique.runtime.confinement import Confinement, default_confinement
from portique.runtime.seccomp_default import DOCKER_DEFAULT_CAPS, default_profile

# build_spec's output for the inputs below, written by the code before the
# confinement moved to runtime/confinement.py (the seccomp profile, which
# depends on the machine's architecture, is checked on its own).
GOLDEN = Path(__file__).with_name("default_container_spec.json")


def default_run_spec(host_caps: list[str], host: dict[str, Any] | None = None) -> dict[str, Any]:
    host = host or {}
    caps = opt.capabilities(
        host.get("CapAdd") or [], host.get("CapDrop") or [], bool(host.get("Privileged")), host_caps
    )
    inputs = cfg.SpecInputs(
        container_id="c" * 64,
        rootfs="/rootfs",
        container_dir="/dir",
        user=ResolvedUser(0, 0, (), "/root"),
        mounts=[],
        seccomp=seccomp_for(host, caps),
        host_caps=host_caps,
    )
    return cfg.build_spec(
        {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, host, inputs, hard_of=lambda _: 4096
    )


def test_default_run_spec_is_byte_for_byte_the_pinned_one() -> None:
    spec = default_run_spec(list(opt.ALL_CAPS))
    assert spec["linux"]["seccomp"] == default_profile(DOCKER_DEFAULT_CAPS)
    spec["linux"]["seccomp"] = "default_profile(DOCKER_DEFAULT_CAPS)"
    assert json.dumps(spec, indent=2) + "\n" == GOLDEN.read_text()


def test_default_confinement_is_the_default_run_containers() -> None:
    host_caps = [c for c in opt.ALL_CAPS if c not in ("CAP_SYS_RESOURCE", "CAP_AUDIT_WRITE")]
    spec = default_run_spec(host_caps)
    conf = default_confinement(host_caps)
    assert "CAP_AUDIT_WRITE" not in conf.capabilities  # the host's bounding set caps it
    assert conf.process_capabilities() == spec["process"]["capabilities"]
    assert conf.no_new_privileges is spec["process"]["noNewPrivileges"] is False
    assert conf.seccomp == spec["linux"]["seccomp"]
    assert conf.mounts() == spec["mounts"][: len(conf.mounts())]
    assert conf.device_rules() == spec["linux"]["resources"]["devices"]
    for key in ("maskedPaths", "readonlyPaths", "seccomp"):
        assert conf.linux_paths()[key] == spec["linux"][key]


def _step(network: str = "none") -> dict[str, Any]:
    return step_spec(
        rootfs=Path("/build/rootfs"),
        argv=["/bin/sh", "-c", "true"],
        env={"PATH": "/bin"},
        cwd="/",
        user={"uid": 0, "gid": 0},
        network=network,
        confinement=default_confinement(opt.ALL_CAPS),
    )


@pytest.mark.parametrize("network", ["none", "host"])
def test_build_step_is_confined_like_the_default_container(network: str) -> None:
    run = default_run_spec(list(opt.ALL_CAPS), {"NetworkMode": network})
    step = _step(network)
    for key in ("capabilities", "noNewPrivileges"):
        assert step["process"][key] == run["process"][key]
    assert step["process"]["terminal"] is False
    n = len(Confinement((), None).mounts())
    assert step["mounts"][:n] == run["mounts"][:n]
    assert step["linux"]["resources"]["devices"] == run["linux"]["resources"]["devices"]
    for key in ("maskedPaths", "readonlyPaths", "seccomp"):
        assert step["linux"][key] == run["linux"][key]
    assert step["linux"]["namespaces"] == run["linux"]["namespaces"]
    assert step["root"] == {"path": "/build/rootfs", "readonly": False}


def test_build_step_on_the_host_network_sees_the_hosts_name_files() -> None:
    step = _step("host")
    assert {"type": "network"} not in step["linux"]["namespaces"]
    extra = [m["destination"] for m in step["mounts"][len(Confinement((), None).mounts()) :]]
    assert set(extra) <= {"/etc/resolv.conf", "/etc/hosts"}
    assert {"type": "network"} in _step("none")["linux"]["namespaces"]


def test_privileged_confinement_drops_the_filters() -> None:
    conf = Confinement(tuple(opt.ALL_CAPS), None, privileged=True)
    assert conf.linux_paths() == {}
    assert conf.device_rules() == [{"allow": True, "access": "rwm"}]
    sys_mount = next(m for m in conf.mounts() if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]
