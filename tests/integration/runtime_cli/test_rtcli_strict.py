"""portique-runtime as its callers (containerd's shim, dockerd, podman) see it:
errors that name what failed and reach --log whatever the stdio, runc's
wording where callers parse it, every flag runc accepts, delete as the spec
says, and features that tell the truth."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.rtcli_bundle import (
    RUNTIME_CMD,
    RuntimeCLI,
    one_line_error,
    portique_cgroups,
    unique_id,
)

RUNC = shutil.which("runc") or "/usr/bin/runc"
OOM_ERROR = "oomScoreAdj -998: writing /proc/self/oom_score_adj: Permission denied"


def _oom(spec: dict[str, Any]) -> None:
    spec["process"]["oomScoreAdj"] = -998


def _without_sys_resource(argv: list[str]) -> list[str]:
    # Lowering oom_score_adj needs CAP_SYS_RESOURCE: a host without it (this
    # one, and the pods of containerd's CRI, which ask -998) is made here.
    return ["setpriv", "--bounding-set", "-sys_resource", "--inh-caps", "-sys_resource", *argv]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_early_create_failure_reaches_the_log_with_unwritable_stdio(
    tmp_path: Path, bundle: Callable[..., Path], log_format: str
) -> None:
    # containerd's shim gives a pod sandbox /dev/null opened read-only as
    # stdout and stderr. The error used to be lost there: writing it to
    # stderr raised, log.json stayed empty and the runtime exited 120.
    b = bundle(edit=_oom)
    log = tmp_path / f"log.{log_format}"
    argv = [*RUNTIME_CMD, "--root", str(tmp_path / "state"), "--log", str(log)]
    argv += ["--log-format", log_format, "create", "--bundle", str(b), unique_id()]
    with open(os.devnull) as ro:
        proc = subprocess.run(
            _without_sys_resource(argv), stdin=ro, stdout=ro, stderr=ro, timeout=60, check=False
        )
    assert proc.returncode == 1
    lines = log.read_text().splitlines()
    if log_format == "json":
        entry = json.loads(lines[-1])
        assert (entry["level"], entry["msg"]) == ("error", OOM_ERROR)
    else:
        assert lines[-1].startswith("time=")
        assert f"level=error msg={json.dumps(OOM_ERROR)}" in lines[-1]
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_early_create_failure_names_the_step_on_stderr(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    b = bundle(edit=_oom)
    proc = subprocess.run(
        _without_sys_resource(rt.argv("create", "--bundle", str(b), unique_id())),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert one_line_error(proc.stderr) == f"portique-runtime: {OOM_ERROR}"


def _bind_missing(spec: dict[str, Any]) -> None:
    spec["mounts"].append({"destination": "/x", "source": "/nonexistent", "options": ["bind"]})


def _bad_sysctl(spec: dict[str, Any]) -> None:
    spec["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}


def _bad_cwd(spec: dict[str, Any]) -> None:
    spec["process"]["cwd"] = "/no/such/dir"


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (_bind_missing, r"mounts\[\d+\] /x: bind source /nonexistent does not exist"),
        (_bad_sysctl, r"linux\.sysctl net\.ipv4\.no_such_knob: .*No such file or directory"),
        (_bad_cwd, r"cwd /no/such/dir: chdir: No such file or directory"),
    ],
    ids=["bind-source", "sysctl", "cwd"],
)
def test_early_failures_name_the_field(
    rt: RuntimeCLI,
    bundle: Callable[..., Path],
    edit: Callable[[dict[str, Any]], None],
    pattern: str,
) -> None:
    proc = rt("create", "--bundle", str(bundle(edit=edit)), unique_id(), check=False)
    assert proc.returncode == 1
    assert re.search(pattern, one_line_error(proc.stderr)), proc.stderr
    assert re.search(pattern, json.loads(rt.log.read_text().splitlines()[-1])["msg"])
    assert rt("list", "-q").stdout == ""


# ---------------------------------------------------------------- delete


def test_delete_without_force_refuses_a_created_container(
    rt: RuntimeCLI, bundle: Callable[..., Path]
) -> None:
    # The spec: deleting a container that is not stopped MUST fail, a
    # created one included (runc 1.1 deletes it; the spec wins).
    cid = unique_id()
    rt("create", "--bundle", str(bundle()), cid)
    refused = rt("delete", cid, check=False)
    assert refused.returncode == 1
    assert "that is not stopped: created" in one_line_error(refused.stderr)
    assert rt.state(cid)["status"] == "created"
    rt("kill", cid, "KILL")
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    rt("delete", cid)
    assert rt("list", "-q").stdout == ""


# ---------------------------------------------------------------- flags


def _runc_flags(*verb: str) -> set[str]:
    """The long and short flags `runc [verb] --help` lists under OPTIONS."""
    text = subprocess.run(
        [RUNC, *verb, "--help"], capture_output=True, text=True, check=True
    ).stdout
    section = re.split(r"^(?:GLOBAL )?OPTIONS:\s*$", text, flags=re.M)[-1]
    flags: set[str] = set()
    for line in section.splitlines():
        m = re.match(r"^\s{2,}(-[^\s].*?)(?:\s{2,}|$)", line)
        if m is None:
            continue
        for part in m.group(1).split(","):
            name = part.strip().split(" ")[0]
            if name.startswith("-"):
                flags.add(name)
    return flags - {"--help", "-h", "--version", "-v"}


def _takes_value(verb: tuple[str, ...], flag: str) -> bool:
    text = subprocess.run([RUNC, *verb, "--help"], capture_output=True, text=True).stdout
    return re.search(rf"{re.escape(flag)}\b[^,\n]*? value", text) is not None


VERBS = [
    "checkpoint",
    "create",
    "delete",
    "events",
    "exec",
    "kill",
    "list",
    "pause",
    "ps",
    "restore",
    "resume",
    "run",
    "spec",
    "start",
    "state",
    "update",
]


def test_every_global_flag_runc_accepts_is_accepted(rt: RuntimeCLI, tmp_path: Path) -> None:
    flags = _runc_flags()
    assert {"--root", "--log", "--log-format", "--criu", "--rootless", "--debug"} <= flags
    values = {"--log-format": "json", "--rootless": "false", "--criu": "criu"}
    for flag in sorted(flags - {"--systemd-cgroup"}):
        argv = [*RUNTIME_CMD, flag]
        if _takes_value((), flag):
            argv.append(values.get(flag, str(tmp_path / flag.strip("-"))))
        proc = subprocess.run(
            [*argv, "list", "-q"], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, (flag, proc.stderr)
    # Refused on purpose, in one line that says why (features says so too).
    proc = subprocess.run(
        [*RUNTIME_CMD, "--systemd-cgroup", "list"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "--systemd-cgroup is not supported" in one_line_error(proc.stderr)


@pytest.mark.parametrize("verb", VERBS)
def test_every_flag_runc_accepts_per_verb_is_accepted(verb: str) -> None:
    """Each flag of `runc VERB --help` parses (argparse alone: nothing runs)."""
    from portique.cli.runc.main import ArgumentParser, UsageError, load_verb

    module = load_verb(verb)
    assert module is not None
    parser = ArgumentParser(prog=f"portique-runtime {verb}")
    module.add_arguments(parser)
    values = {"--format": "json", "-f": "json", "--manage-cgroups-mode": "soft"}
    for flag in sorted(_runc_flags(verb)):
        argv = [flag]
        if _takes_value((verb,), flag):
            argv.append(values.get(flag, "1"))
        if verb not in ("list", "spec"):
            argv.append("some-id")
        try:
            parser.parse_args(argv)
        except UsageError as e:
            pytest.fail(f"{verb} {flag}: {e}")


def test_update_resources_from_stdin(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    # podman: `update --resources -`; the values reach the cgroup.
    cid = unique_id()
    rt("run", "-d", "--bundle", str(bundle()), cid)
    rt("update", "--resources", "-", cid, input=b'{"pids": {"limit": 77}}', stdin=None)
    pids_max = [d / "pids.max" for d in portique_cgroups(cid) if (d / "pids.max").exists()]
    assert pids_max, "no pids controller for the container"
    assert pids_max[0].read_text().strip() == "77"
    rt("delete", "--force", cid)


# ---------------------------------------------------------------- features


def test_features_say_what_is_refused(rt: RuntimeCLI) -> None:
    features = json.loads(rt("features").stdout)
    assert features["linux"]["cgroup"]["systemd"] is False
    assert features["linux"]["cgroup"]["systemdUser"] is False
    assert "time" in features["linux"]["namespaces"]
    # Id-mapped mounts where the kernel has mount_setattr (5.12; 6.x here).
    assert features["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    annotations = features["annotations"]
    assert annotations["org.portique.runtime.checkpoint.enabled"] in ("true", "false")


# ---------------------------------------------------------------- checkpoint, run --keep


@pytest.mark.parametrize("verb", ["checkpoint", "restore"])
def test_checkpoint_and_restore_are_refused_saying_why(
    rt: RuntimeCLI, bundle: Callable[..., Path], tmp_path: Path, verb: str
) -> None:
    cid = unique_id()
    rt("run", "-d", "--bundle", str(bundle()), cid)
    proc = rt(verb, "--image-path", str(tmp_path / "img"), "--tcp-established", cid, check=False)
    assert proc.returncode == 1
    line = one_line_error(proc.stderr)
    assert f"{verb} is not supported: " in line
    # What criu says on this host, or that it is missing; or, where criu
    # works, that portique-runtime does not drive it.
    assert re.search(
        r"`criu check` fails on this kernel: \S|criu is not installed|drive CRIU", line
    )
    assert rt.state(cid)["status"] == "running"  # untouched
    rt("delete", "--force", cid)


def test_run_keep_leaves_the_stopped_container(rt: RuntimeCLI, bundle: Callable[..., Path]) -> None:
    cid = unique_id()
    proc = rt("run", "--keep", "--bundle", str(bundle("sh", "-c", "exit 3")), cid, check=False)
    assert proc.returncode == 3
    assert rt.state(cid)["status"] == "stopped"
    rt("delete", cid)
    assert rt("list", "-q").stdout == ""
