"""portique-runtime's command line: global flags, verb parsers, errors, log format."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from portique.cli.runc import main as rtmain
from portique.cli.runc.context import RuntimeLog, format_entry


def parse_verb(verb: str, argv: list[str]) -> argparse.Namespace:
    module = rtmain.load_verb(verb)
    assert module is not None
    parser = rtmain.ArgumentParser(prog=f"portique-runtime {verb}")
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_version_prints_runtime_and_spec_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"portique-runtime version \S+\nspec: 1\.\d+\.\d+\n", out)
    assert rtmain.main(["-v"]) == 0
    assert capsys.readouterr().out == out


def test_help_and_no_verb_print_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main([]) == 0
    assert "usage: portique-runtime" in capsys.readouterr().out
    assert rtmain.main(["--help"]) == 0
    assert "--systemd-cgroup" in capsys.readouterr().out


def test_globals_split_in_every_spelling() -> None:
    opts, rest = rtmain.parse_globals(
        [
            "--root",
            "/r",
            "--log=/l",
            "-log-format",
            "json",
            "--debug",
            "create",
            "--bundle",
            "b",
            "x",
        ]
    )
    assert opts == {"root": "/r", "log": "/l", "log-format": "json", "debug": True}
    assert rest == ["create", "--bundle", "b", "x"]
    opts, rest = rtmain.parse_globals(["--systemd-cgroup=false", "--criu", "/c", "state", "x"])
    assert opts == {"systemd-cgroup": False, "criu": "/c"}
    assert rest == ["state", "x"]


@pytest.mark.parametrize(
    "argv",
    [["--root"], ["--bogus", "state", "x"], ["--debug=maybe", "state", "x"]],
)
def test_bad_global_flags_are_one_line_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert rtmain.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("portique-runtime: ")


def test_context_defaults_and_checks(tmp_path: Path) -> None:
    ctx = rtmain.make_context({})
    assert ctx.root == "/run/portique-runtime"
    assert ctx.log.path is None
    assert ctx.rootless == "auto"
    ctx = rtmain.make_context({"root": str(tmp_path), "rootless": "false", "log-format": "json"})
    assert ctx.root == str(tmp_path)
    assert ctx.log.json_format
    with pytest.raises(rtmain.UsageError, match="log format"):
        rtmain.make_context({"log-format": "xml"})
    with pytest.raises(rtmain.UsageError, match="rootless"):
        rtmain.make_context({"rootless": "sometimes"})


def test_systemd_cgroup_is_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.json"
    code = rtmain.main(
        ["--log", str(log), "--log-format", "json", "--systemd-cgroup", "state", "x"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        "portique-runtime: --systemd-cgroup is not supported: "
        "portique-runtime manages cgroupfs directly "
        "(`portique-runtime features`: cgroup systemd false)\n"
    )
    entry = json.loads(log.read_text())
    assert entry["level"] == "error"
    assert "systemd-cgroup" in entry["msg"]


def test_unknown_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["frobnicate"]) == 1
    assert capsys.readouterr().err == "portique-runtime: no such command: frobnicate\n"


def test_missing_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["kill"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "container-id" in err


def test_json_log_lines_have_runc_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "runtime.log"
    # A bad signal fails before any container is looked at.
    assert rtmain.main(["--log", str(log), "--log-format", "json", "kill", "c1", "NOSUCH"]) == 1
    assert rtmain.main(["--log", str(log), "--log-format", "json", "kill", "c1", "BOGUS"]) == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        entry = json.loads(line)
        assert set(entry) == {"level", "msg", "time"}
        assert entry["level"] == "error"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["time"])
    assert json.loads(lines[0])["msg"] == "unknown signal 'NOSUCH'"
    assert capsys.readouterr().err.count("\n") == 2


def test_text_log_lines_have_logrus_shape(tmp_path: Path) -> None:
    line = format_entry("error", 'bad "thing"', json_format=False, when="2026-01-01T00:00:00Z")
    assert line == 'time="2026-01-01T00:00:00Z" level=error msg="bad \\"thing\\""\n'
    log = RuntimeLog(tmp_path / "t.log", json_format=False, debug=False)
    log.debug("hidden")
    log.error("shown")
    assert log.path is not None
    text = Path(log.path).read_text()
    assert "hidden" not in text
    assert 'level=error msg="shown"' in text


def test_debug_messages_only_with_debug(tmp_path: Path) -> None:
    log = RuntimeLog(tmp_path / "d.log", json_format=True, debug=True)
    log.debug("step one")
    assert json.loads((tmp_path / "d.log").read_text()) == {
        "level": "debug",
        "msg": "step one",
        "time": json.loads((tmp_path / "d.log").read_text())["time"],
    }


def test_checkpoint_and_restore_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["checkpoint", "--image-path", "/x", "c1"]) == 1
    assert "checkpoint is not supported" in capsys.readouterr().err
    assert rtmain.main(["restore", "c1"]) == 1
    assert "restore is not supported" in capsys.readouterr().err


def test_every_verb_has_a_parser() -> None:
    for verb in rtmain.VERBS:
        module = rtmain.load_verb(verb)
        assert module is not None, verb
        assert callable(module.add_arguments)
        assert callable(module.run)


def test_create_flags() -> None:
    ns = parse_verb(
        "create",
        [
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/c.sock",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
            "2",
            "ctr",
        ],
    )
    assert (ns.bundle, ns.pid_file, ns.console_socket) == ("/b", "/p", "/c.sock")
    assert ns.no_pivot
    assert ns.no_new_keyring
    assert ns.preserve_fds == 2
    assert ns.container_id == "ctr"
    ns = parse_verb("create", ["-b", "/b", "ctr"])
    assert ns.bundle == "/b"
    assert not ns.no_pivot
    assert ns.preserve_fds == 0


def test_run_flags() -> None:
    ns = parse_verb("run", ["-d", "--bundle", "/b", "--pid-file", "/p", "ctr"])
    assert ns.detach
    assert ns.bundle == "/b"
    assert ns.container_id == "ctr"
    ns = parse_verb("run", ["ctr"])
    assert not ns.detach
    assert ns.bundle == ""


def test_kill_flags() -> None:
    ns = parse_verb("kill", ["ctr"])
    assert (ns.container_id, ns.signal, ns.all) == ("ctr", "SIGTERM", False)
    ns = parse_verb("kill", ["--all", "ctr", "KILL"])
    assert (ns.container_id, ns.signal, ns.all) == ("ctr", "KILL", True)
    ns = parse_verb("kill", ["-a", "ctr", "9"])
    assert ns.signal == "9"
    assert ns.all


def test_delete_state_start_pause_resume_flags() -> None:
    assert parse_verb("delete", ["--force", "c"]).force
    assert parse_verb("delete", ["-f", "c"]).force
    assert not parse_verb("delete", ["c"]).force
    for verb in ("state", "start", "pause", "resume"):
        assert parse_verb(verb, ["c"]).container_id == "c"


def test_exec_flags_and_trailing_command() -> None:
    ns = parse_verb(
        "exec",
        [
            "-d",
            "--pid-file",
            "/p",
            "-t",
            "--console-socket",
            "/s",
            "-e",
            "A=1",
            "--env",
            "B=2",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1000",
            "--cap",
            "CAP_NET_ADMIN",
            "--no-new-privs",
            "--preserve-fds",
            "1",
            "ctr",
            "sh",
            "-c",
            "echo --not-a-flag",
        ],
    )
    assert ns.detach
    assert ns.tty
    assert ns.no_new_privs
    assert ns.env == ["A=1", "B=2"]
    assert (ns.cwd, ns.user, ns.cap, ns.preserve_fds) == ("/tmp", "1000:1000", ["CAP_NET_ADMIN"], 1)
    assert ns.container_id == "ctr"
    assert ns.command == ["sh", "-c", "echo --not-a-flag"]
    ns = parse_verb("exec", ["--process", "/proc.json", "ctr"])
    assert ns.process == "/proc.json"
    assert ns.command == []
    assert ns.tty is None
    assert ns.no_new_privs is None


def test_list_ps_events_spec_flags() -> None:
    ns = parse_verb("list", ["-q"])
    assert ns.quiet
    assert ns.format == "table"
    assert parse_verb("list", ["--format", "json"]).format == "json"
    ns = parse_verb("ps", ["--format", "json", "ctr"])
    assert (ns.format, ns.container_id, ns.ps_args) == ("json", "ctr", [])
    ns = parse_verb("ps", ["ctr", "-o", "pid,comm"])
    assert ns.ps_args == ["-o", "pid,comm"]
    ns = parse_verb("events", ["--stats", "--interval", "1s", "ctr"])
    assert ns.stats
    assert ns.interval == "1s"
    ns = parse_verb("spec", ["--rootless", "-b", "/b"])
    assert ns.rootless
    assert ns.bundle == "/b"


def test_bad_verb_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.main(["list", "--format", "yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid choice" in err


def test_debug_logs_each_call(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    bundle = tmp_path / "b"
    bundle.mkdir()
    argv = ["--log", str(log), "--log-format", "json", "--debug", "spec", "-b", str(bundle)]
    assert rtmain.main(argv) == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["level"], e["msg"]) for e in entries] == [("debug", f"spec -b {bundle}")]
    # Without --debug, a successful call writes nothing.
    (bundle / "config.json").unlink()
    assert rtmain.main(argv[:4] + argv[5:]) == 0
    assert len(log.read_text().splitlines()) == 1


def test_os_errors_read_as_path_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code = rtmain.report(FileNotFoundError(2, "No such file or directory", "/x/y"), None)
    assert code == 1
    assert capsys.readouterr().err == "portique-runtime: /x/y: no such file or directory\n"
    rtmain.report(PermissionError(1, "Operation not permitted"), None)
    assert capsys.readouterr().err == "portique-runtime: operation not permitted\n"


def test_internal_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmain.report(KeyError("boom"), None) == 1
    assert capsys.readouterr().err == "portique-runtime: internal error: KeyError: 'boom'\n"


def test_pid_file_directory_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = rtmain.main(["--root", str(tmp_path), "create", "--pid-file", "/nonexistent/p", "c1"])
    assert code == 1
    err = capsys.readouterr().err
    assert (
        err == "portique-runtime: pid file /nonexistent/p: directory /nonexistent does not exist\n"
    )
    assert not (tmp_path / "c1").exists()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--apparmor", "p"], "apparmor"),
        (["--process-label", "l"], "selinux"),
        (["--cgroup", "pids:sub"], "--cgroup"),
        (["--ignore-paused"], "--ignore-paused"),
    ],
)
def test_exec_refuses_what_it_cannot_do(
    flags: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any container is looked up.
    assert rtmain.main(["--root", str(tmp_path), "exec", *flags, "c1", "true"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert needle in err
    assert "not supported" in err
