"""oci/runtime.py: each rejection names its field; valid configs parse fully."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from portique.errors import InvalidArgument, NotFound
from portique.oci.runtime import load_spec, parse_process, parse_spec

BASE: dict[str, Any] = {
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "h",
    "process": {
        "args": ["sh"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 1, "gid": 2, "additionalGids": [3], "umask": 18},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}],
        "noNewPrivileges": True,
        "oomScoreAdj": 100,
        "terminal": True,
        "consoleSize": {"height": 10, "width": 20},
    },
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
    "hooks": {"prestart": [{"path": "/bin/true", "timeout": 5}]},
    "annotations": {"a": "b"},
    "linux": {
        "namespaces": [
            {"type": "pid"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "network", "path": "/run/netns/x"},
        ],
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229}],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "cgroupsPath": "/portique/x",
        "rootfsPropagation": "rslave",
    },
}


def cfg(**patch: Any) -> dict[str, Any]:
    c = copy.deepcopy(BASE)
    for dotted, value in patch.items():
        node = c
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return c


_DELETE = object()


def test_full_config_parses() -> None:
    spec = parse_spec(BASE)
    assert spec.root.readonly
    assert spec.root.path == "rootfs"
    p = spec.process
    assert p is not None
    assert p.args == ("sh",)
    assert p.user.additional_gids == (3,)
    assert p.user.umask == 18
    assert p.capabilities is not None
    assert p.capabilities.bounding == ("CAP_KILL",)
    assert p.capabilities.ambient == ()
    assert p.rlimits[0].soft == 5
    assert p.console_size == (10, 20)
    assert spec.linux.namespace("network") is not None
    assert spec.linux.has_new("pid")
    assert not spec.linux.has_new("network")
    assert spec.hooks.prestart[0].timeout == 5
    assert dict(spec.annotations) == {"a": "b"}
    assert spec.linux.devices[0].major == 10


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"ociVersion": _DELETE}, "ociVersion: required"),
        ({"ociVersion": "2.0.0"}, "ociVersion: unsupported version"),
        ({"root": _DELETE}, "root: required"),
        ({"root__path": ""}, "root.path: required"),
        ({"root__readonly": "yes"}, "root.readonly: must be a boolean"),
        ({"process__args": []}, "process.args: must not be empty"),
        ({"process__args": ["sh", 1]}, r"process.args\[1\]: must be a string"),
        ({"process__cwd": "relative"}, "process.cwd: 'relative' must be an absolute path"),
        (
            {"process__env": ["NOEQUALS"]},
            r"process.env\[0\]: 'NOEQUALS' is not of the form KEY=value",
        ),
        ({"process__user__uid": -1}, "process.user.uid: -1 is out of range"),
        (
            {"process__user__additionalGids": ["x"]},
            r"process.user.additionalGids\[0\]: must be an integer",
        ),
        (
            {"process__capabilities__effective": ["CAP_FOO"]},
            r"process.capabilities.effective\[0\]: unknown capability 'CAP_FOO'",
        ),
        (
            {"process__rlimits": [{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]},
            r"process.rlimits\[0\].type: unknown rlimit",
        ),
        (
            {"process__rlimits": [{"type": "RLIMIT_CORE", "hard": 1, "soft": 2}]},
            r"process.rlimits\[0\].soft: 2 is above the hard limit 1",
        ),
        (
            {"process__rlimits": [{"type": "RLIMIT_CORE", "hard": 1, "soft": 1}] * 2},
            r"process.rlimits\[1\].type: duplicate rlimit",
        ),
        ({"process__oomScoreAdj": 5000}, "process.oomScoreAdj: 5000 is out of range"),
        ({"process__terminal": 1}, "process.terminal: must be a boolean"),
        ({"mounts": [{"type": "proc"}]}, r"mounts\[0\].destination: required"),
        (
            {"mounts": [{"destination": "/x", "options": ["bind"]}]},
            r"mounts\[0\].source: a bind mount needs a source",
        ),
        (
            {"mounts": [{"destination": "/x", "source": "y"}]},
            r"mounts\[0\].type: required for a non-bind mount",
        ),
        (
            {"hooks__prestart": [{"path": "rel"}]},
            r"hooks.prestart\[0\].path: 'rel' must be an absolute path",
        ),
        (
            {"hooks__prestart": [{"path": "/x", "timeout": 0}]},
            r"hooks.prestart\[0\].timeout: 0 is out of range",
        ),
        (
            {"linux__namespaces": [{"type": "foo"}]},
            r'linux.namespaces\[0\].type: unknown namespace type "foo"',
        ),
        (
            {"linux__namespaces": [{"type": "pid"}, {"type": "pid"}]},
            r"linux.namespaces\[1\].type: duplicate namespace pid",
        ),
        (
            {"linux__namespaces": [{"type": "pid", "path": "rel"}]},
            r"linux.namespaces\[0\].path: 'rel' must be an absolute path",
        ),
        (
            {"linux__uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
            "linux.uidMappings: user namespace mappings given without a new user namespace",
        ),
        (
            {"linux__devices": [{"type": "x", "path": "/dev/x"}]},
            r"linux.devices\[0\].type: unknown device type",
        ),
        (
            {"linux__devices": [{"type": "c", "path": "/dev/x"}]},
            r"linux.devices\[0\]: a c device needs major and minor",
        ),
        (
            {"linux__devices": [{"type": "c", "path": "dev/x", "major": 1, "minor": 1}]},
            r"linux.devices\[0\].path",
        ),
        (
            {"linux__maskedPaths": ["proc"]},
            r"linux.maskedPaths\[0\]: 'proc' must be an absolute path",
        ),
        ({"linux__readonlyPaths": [5]}, r"linux.readonlyPaths\[0\]: must be a string"),
        (
            {"linux__sysctl": {"kernel.panic": "1"}},
            "linux.sysctl.kernel.panic: not in a namespace the container owns",
        ),
        (
            {"linux__sysctl": {"kernel.shmmax": "1"}},
            "linux.sysctl.kernel.shmmax: needs a private ipc namespace",
        ),
        ({"linux__rootfsPropagation": "weird"}, "linux.rootfsPropagation: unknown propagation"),
        (
            {"linux__namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]},
            "hostname: cannot set a hostname without a private uts namespace",
        ),
    ],
)
def test_rejections_name_the_field(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^config.json: {message}"):
        parse_spec(cfg(**patch))


def test_user_namespace_needs_both_mappings() -> None:
    c = cfg()
    c["linux"]["namespaces"].append({"type": "user"})
    with pytest.raises(InvalidArgument, match="needs uid and gid mappings"):
        parse_spec(c)
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 0}]
    with pytest.raises(InvalidArgument, match=r"linux.gidMappings\[0\].size: must be positive"):
        parse_spec(c)
    c["linux"]["gidMappings"][0]["size"] = 10
    spec = parse_spec(c)
    assert spec.linux.uid_mappings[0].host_id == 1000


def test_not_an_object() -> None:
    with pytest.raises(InvalidArgument, match="must be an object"):
        parse_spec([])


def test_mount_destination_normalised() -> None:
    spec = parse_spec(cfg(mounts=[{"destination": "data/../x", "type": "tmpfs"}]))
    assert spec.mounts[0].destination == "/x"
    # POSIX normpath keeps a leading "//": absolute destinations must stay "/x".
    for dest, want in (("/proc", "/proc"), ("//proc", "/proc"), ("../../x", "/x")):
        spec = parse_spec(cfg(mounts=[{"destination": dest, "type": "tmpfs"}]))
        assert spec.mounts[0].destination == want


def test_parse_process_for_exec() -> None:
    p = parse_process({"args": ["ls"], "env": ["A=1"], "cwd": "/tmp"})
    assert p.args == ("ls",)
    assert p.env == ("A=1",)
    assert p.cwd == "/tmp"
    assert p.capabilities is None
    assert p.user.uid == 0
    with pytest.raises(InvalidArgument, match=r"^process\.args: must not be empty"):
        parse_process({"args": []})
    assert parse_process({}, require_args=False).args == ()


def test_load_spec(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"config\.json not found"):
        load_spec(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(InvalidArgument, match=r"config\.json: not valid JSON"):
        load_spec(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(BASE))
    assert load_spec(tmp_path).hostname == "h"
