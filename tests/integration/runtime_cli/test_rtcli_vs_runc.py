"""runc itself as the oracle: the same calls on the same bundle give the same
shapes, statuses and exit codes from runc and from portique-runtime."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.rtcli_bundle import RuntimeCLI, unique_id, wait_pids

RUNC = shutil.which("runc") or "/usr/bin/runc"


class Runc(RuntimeCLI):
    """The same driver, pointed at the real runc binary."""

    def argv(self, *args: str) -> list[str]:
        return [
            RUNC,
            "--root",
            str(self.root),
            "--log",
            str(self.log),
            "--log-format",
            "json",
            *args,
        ]


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runc]:
    assert Path(RUNC).exists(), "runc is installed by scripts/setup.sh"
    cli = Runc(tmp_path / "runc-state", tmp_path / "runc.log")
    yield cli
    for cid in cli("list", "-q", check=False).stdout.split():
        cli("delete", "--force", cid, check=False)


@pytest.fixture
def both(rt: RuntimeCLI, runc: Runc) -> list[RuntimeCLI]:
    return [runc, rt]


def _lifecycle_states(cli: RuntimeCLI, bundle: Path) -> list[dict[str, Any]]:
    cid = unique_id("oracle")
    cli("create", "-b", str(bundle), cid)
    seen = [cli.state(cid)]
    cli("start", cid)
    seen.append(cli.state(cid))
    cli("pause", cid)
    seen.append(cli.state(cid))
    cli("resume", cid)
    cli("kill", cid, "KILL")
    seen.append(cli.wait_status(cid, "stopped"))
    cli("delete", cid)
    return seen


def test_state_json_matches_runc_through_the_lifecycle(
    both: list[RuntimeCLI], bundle: Callable[..., Path]
) -> None:
    b = bundle()
    ours, theirs = _lifecycle_states(both[1], b), _lifecycle_states(both[0], b)
    assert [s["status"] for s in ours] == [s["status"] for s in theirs]
    assert [s["status"] for s in ours] == ["created", "running", "paused", "stopped"]
    for mine, runcs in zip(ours, theirs, strict=True):
        assert set(mine) == set(runcs)
        assert mine["bundle"] == runcs["bundle"]
        assert mine["rootfs"] == runcs["rootfs"]
        assert (mine["pid"] == 0) == (runcs["pid"] == 0)


def test_list_ps_events_shapes_match_runc(
    both: list[RuntimeCLI], bundle: Callable[..., Path]
) -> None:
    b = bundle("sh", "-c", "sleep 60 & wait")
    outputs: list[dict[str, Any]] = []
    for cli in both:
        empty = cli("list").stdout
        cid = unique_id("shape")
        cli("run", "-d", "-b", str(b), cid)
        pids = wait_pids(cli, cid, 2)
        listed = json.loads(cli("list", "--format", "json").stdout)
        event = json.loads(cli("events", "--stats", cid).stdout)
        cli("delete", "--force", cid)
        outputs.append({"empty": empty, "pids": pids, "listed": listed, "event": event, "cid": cid})
    runcs, ours = outputs
    assert ours["empty"] == runcs["empty"]
    assert len(ours["pids"]) == len(runcs["pids"]) == 2
    assert [set(e) for e in ours["listed"]] == [set(e) for e in runcs["listed"]]
    assert set(ours["event"]) == set(runcs["event"]) == {"type", "id", "data"}
    assert ours["event"]["type"] == runcs["event"]["type"] == "stats"
    data, rdata = ours["event"]["data"], runcs["event"]["data"]
    assert {"cpu", "memory", "pids"} <= set(data)
    assert set(data) <= set(rdata)
    assert data["pids"]["current"] == rdata["pids"]["current"] == 2
    assert set(data["memory"]["usage"]) <= set(rdata["memory"]["usage"])
    assert isinstance(data["cpu"]["usage"]["total"], int)


def test_exit_codes_match_runc(
    both: list[RuntimeCLI], bundle: Callable[..., Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    codes: list[list[int]] = []
    for cli in both:
        row = []
        cid = unique_id("codes")
        row.append(cli("state", "missing", check=False).returncode)
        row.append(cli("create", "-b", str(broken), unique_id(), check=False).returncode)
        row.append(cli("delete", "--force", "missing", check=False).returncode)
        row.append(
            cli("run", "-b", str(bundle("sh", "-c", "exit 7")), unique_id(), check=False).returncode
        )
        cli("run", "-d", "-b", str(bundle()), cid)
        row.append(cli("delete", cid, check=False).returncode)  # running: refused
        row.append(cli("kill", cid, "NOSUCHSIGNAL", check=False).returncode)
        row.append(cli("kill", cid, "sigkill").returncode)
        row.append(cli("start", cid, check=False).returncode)  # not created: refused
        cli("delete", "--force", cid)
        codes.append(row)
    assert codes[1] == codes[0]
    assert codes[0] == [1, 1, 0, 7, 1, 1, 0, 1]


def test_json_log_entries_match_runc(both: list[RuntimeCLI]) -> None:
    entries = []
    for cli in both:
        assert cli("state", "missing", check=False).returncode == 1
        entries.append(json.loads(cli.log.read_text().splitlines()[-1]))
    assert set(entries[1]) == set(entries[0]) == {"level", "msg", "time"}
    assert entries[1]["level"] == entries[0]["level"] == "error"
    assert "does not exist" in entries[0]["msg"]
    assert "does not exist" in entries[1]["msg"]


def test_spec_and_features_cover_runcs(tmp_path: Path, runc: Runc, rt: RuntimeCLI) -> None:
    specs = []
    for name, cli in (("runc", runc), ("ours", rt)):
        d = tmp_path / f"spec-{name}"
        d.mkdir()
        cli("spec", "--bundle", str(d))
        specs.append(json.loads((d / "config.json").read_text()))
    runcs, ours = specs
    assert set(ours) == set(runcs)
    assert [m["destination"] for m in ours["mounts"]] == [m["destination"] for m in runcs["mounts"]]
    assert {n["type"] for n in ours["linux"]["namespaces"]} >= {
        n["type"] for n in runcs["linux"]["namespaces"]
    }
    assert ours["linux"]["maskedPaths"] == runcs["linux"]["maskedPaths"]
    assert ours["linux"]["readonlyPaths"] == runcs["linux"]["readonlyPaths"]
    assert ours["process"]["args"] == runcs["process"]["args"]

    theirs = json.loads(subprocess.run([RUNC, "features"], capture_output=True, check=True).stdout)
    mine = json.loads(rt("features").stdout)
    assert set(theirs) <= set(mine)
    assert set(theirs["linux"]) <= set(mine["linux"])
    assert set(mine["linux"]["namespaces"]) >= set(theirs["linux"]["namespaces"])
    assert set(mine["hooks"]) == set(theirs["hooks"])
    assert set(mine["linux"]["capabilities"]) == set(theirs["linux"]["capabilities"])


# Texts callers match on runc's errors: containerd's shim takes a failed kill
# for "already stopped" only on "container not running" (or "no such
# process", "process already finished"); "does not exist" means gone to the
# shim and to podman. Each phrase must appear in runc's error (the oracle)
# and in ours, on stderr and in the JSON log.
ERROR_TEXTS = [
    ("kill-stopped", "stopped", ["kill", "{id}", "KILL"], "container not running"),
    ("pause-stopped", "stopped", ["pause", "{id}"], "container not running"),
    ("start-stopped", "stopped", ["start", "{id}"], "cannot start a container that has stopped"),
    ("exec-stopped", "stopped", ["exec", "{id}", "true"], "cannot exec in a stopped container"),
    ("resume-running", "running", ["resume", "{id}"], "container not paused"),
    ("start-running", "running", ["start", "{id}"], "cannot start an already running container"),
    ("delete-running", "running", ["delete", "{id}"], "that is not stopped: running"),
    ("kill-missing", "none", ["kill", "{id}", "KILL"], "does not exist"),
    ("state-missing", "none", ["state", "{id}"], "does not exist"),
    ("delete-missing", "none", ["delete", "{id}"], "does not exist"),
]


@pytest.mark.parametrize(
    ("name", "status", "argv", "phrase"), ERROR_TEXTS, ids=[c[0] for c in ERROR_TEXTS]
)
def test_error_texts_callers_parse_match_runc(
    both: list[RuntimeCLI],
    bundle: Callable[..., Path],
    name: str,
    status: str,
    argv: list[str],
    phrase: str,
) -> None:
    b = bundle("sh", "-c", "sleep 60") if status == "running" else bundle("true")
    for cli in both:
        cid = unique_id("texts")
        if status != "none":
            cli("run", "-d", "-b", str(b), cid)
            assert cli.wait_status(cid, status)["status"] == status
        proc = cli(*[a.format(id=cid) for a in argv], check=False)
        who = type(cli).__name__
        assert proc.returncode != 0, (who, name)
        assert phrase in proc.stderr, (who, name, proc.stderr)
        assert phrase in json.loads(cli.log.read_text().splitlines()[-1])["msg"], (who, name)
        if status != "none":
            cli("delete", "--force", cid)


# dockerd answers 127 for "executable file not found" or "no such file or
# directory" with the command named, 126 for "permission denied"; podman
# matches the same texts (libpod/oci_util.go getOCIRuntimeError).
EXEC_TEXTS = [
    ("not-in-path", "nosuchcmd", ['exec: "nosuchcmd"', "executable file not found"]),
    ("missing-path", "/nosuch", ['exec: "/nosuch"', "no such file or directory"]),
    ("directory", "/bin", ['exec: "/bin"', "permission denied"]),
    ("not-executable", "/etc/passwd", ['exec: "/etc/passwd"', "permission denied"]),
]


@pytest.mark.parametrize(("name", "arg0", "phrases"), EXEC_TEXTS, ids=[c[0] for c in EXEC_TEXTS])
def test_exec_error_texts_match_runc(
    both: list[RuntimeCLI], bundle: Callable[..., Path], name: str, arg0: str, phrases: list[str]
) -> None:
    b = bundle(arg0)
    for cli in both:
        proc = cli("create", "-b", str(b), unique_id("exec"), check=False)
        who = type(cli).__name__
        assert proc.returncode == 1, (who, name)
        for phrase in phrases:
            assert phrase in proc.stderr, (who, name, proc.stderr)
        assert cli("list", "-q").stdout == ""
