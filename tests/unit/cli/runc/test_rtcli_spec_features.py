"""`spec` and `features`: the default config is valid OCI, features tell the truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portique.cli.runc.main import main
from portique.linux.caps import CAPABILITIES
from portique.oci.runtime import NAMESPACE_TYPES, parse_spec
from portique.runtime.default_spec import default_spec
from portique.runtime.features import features
from portique.runtime.state import OCI_VERSION as STATE_OCI_VERSION


def test_default_spec_parses_as_oci() -> None:
    spec = parse_spec(default_spec())
    assert spec.oci_version == STATE_OCI_VERSION
    assert spec.root.path == "rootfs"
    assert spec.root.readonly
    assert spec.process is not None
    assert spec.process.args == ("sh",)
    assert spec.process.terminal
    assert spec.process.no_new_privileges
    assert {ns.type for ns in spec.linux.namespaces} == {
        "pid",
        "network",
        "ipc",
        "uts",
        "mount",
        "cgroup",
    }
    assert [m.destination for m in spec.mounts] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ]
    assert "/proc/kcore" in spec.linux.masked_paths
    assert "/proc/sys" in spec.linux.readonly_paths
    assert not spec.linux.uid_mappings


def test_default_spec_is_fresh_each_call() -> None:
    a = default_spec()
    a["process"]["args"].append("x")
    assert default_spec()["process"]["args"] == ["sh"]


def test_rootless_spec_maps_caller_and_parses() -> None:
    obj = default_spec(rootless=True, uid=1000, gid=1001)
    spec = parse_spec(obj)
    types = [ns.type for ns in spec.linux.namespaces]
    assert "user" in types
    assert "network" not in types
    assert [(m.container_id, m.host_id, m.size) for m in spec.linux.uid_mappings] == [(0, 1000, 1)]
    assert [(m.container_id, m.host_id, m.size) for m in spec.linux.gid_mappings] == [(0, 1001, 1)]
    assert "resources" not in obj["linux"]
    sys_mount = next(m for m in spec.mounts if m.destination == "/sys")
    assert sys_mount.type == "none"
    assert "rbind" in sys_mount.options
    assert not any(o.startswith("gid=") for m in spec.mounts for o in m.options)


def test_spec_verb_writes_then_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spec", "--bundle", str(tmp_path)]) == 0
    path = tmp_path / "config.json"
    written = json.loads(path.read_text())
    assert written == default_spec()
    before = path.read_bytes()
    assert main(["spec", "--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"portique-runtime: {path} already exists: remove it first\n"
    assert path.read_bytes() == before


def test_spec_verb_rootless_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["spec", "--rootless"]) == 0
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["linux"]["uidMappings"][0]["hostID"] == os.geteuid()


def test_spec_verb_refuses_missing_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spec", "-b", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_spec_verb_does_not_follow_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").symlink_to(target)
    assert main(["spec", "-b", str(tmp_path / "b")]) == 1
    assert not target.exists()


def test_features_shape() -> None:
    doc = features()
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["ociVersionMax"] == STATE_OCI_VERSION
    assert doc["hooks"] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    assert doc["mountOptions"] == sorted(doc["mountOptions"])
    assert {"bind", "rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"} <= set(
        doc["mountOptions"]
    )
    linux = doc["linux"]
    assert set(linux["namespaces"]) <= NAMESPACE_TYPES
    assert {"pid", "mount", "user", "cgroup", "network", "ipc", "uts"} <= set(linux["namespaces"])
    assert linux["capabilities"][0] == "CAP_CHOWN"
    assert linux["capabilities"].index("CAP_CHECKPOINT_RESTORE") == 40
    assert len(set(CAPABILITIES)) == len(CAPABILITIES)
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False}
    seccomp = linux["seccomp"]
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"} <= set(seccomp["actions"])
    assert "SCMP_CMP_MASKED_EQ" in seccomp["operators"]
    assert "SCMP_ARCH_X86_64" in seccomp["archs"]
    assert linux["apparmor"] == {"enabled": False}
    assert linux["selinux"] == {"enabled": False}
    assert all(isinstance(v, str) for v in doc["annotations"].values())


def test_features_verb_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    assert json.loads(capsys.readouterr().out) == features()


def test_versions_agree_with_the_state_files() -> None:
    """--version, features, spec and state.json name one spec version."""
    from portique.cli.runc.main import SPEC_VERSION

    assert SPEC_VERSION == STATE_OCI_VERSION
    assert default_spec()["ociVersion"] == STATE_OCI_VERSION
