"""Docker-style progress rendering, the transport's host rules, credential helpers."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from portique.cli.docker.commands.pull import ProgressPrinter, parse_bool
from portique.image.credentials import Credentials
from portique.image.pull import ProgressEvent
from portique.image.registry.transport import Transport, api_host, is_loopback


def test_piped_output_has_status_lines_only() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, tty=False)
    p(ProgressEvent("", "latest: Pulling from library/busybox"))
    p(ProgressEvent("aaaaaaaaaaaa", "Pulling fs layer"))
    p(ProgressEvent("aaaaaaaaaaaa", "Downloading", 10, 100))
    p(ProgressEvent("aaaaaaaaaaaa", "Download complete"))
    p(ProgressEvent("aaaaaaaaaaaa", "Extracting", 0, 100))
    p(ProgressEvent("aaaaaaaaaaaa", "Pull complete"))
    assert out.getvalue().splitlines() == [
        "latest: Pulling from library/busybox",
        "aaaaaaaaaaaa: Pulling fs layer",
        "aaaaaaaaaaaa: Download complete",
        "aaaaaaaaaaaa: Pull complete",
    ]


def test_terminal_output_redraws_rows_in_place() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, tty=True)
    p(ProgressEvent("aaaaaaaaaaaa", "Pulling fs layer"))
    p(ProgressEvent("bbbbbbbbbbbb", "Pulling fs layer"))
    mark = len(out.getvalue())
    p(ProgressEvent("aaaaaaaaaaaa", "Downloading", 500_000, 1_000_000))
    redraw = out.getvalue()[mark:]
    # Two rows up (a is the first of two rows), clear, draw, two rows down.
    assert redraw.startswith("\x1b[2A\r\x1b[2K")
    assert redraw.endswith("\x1b[2B\r")
    assert "aaaaaaaaaaaa: Downloading [" in redraw
    assert "500kB/1MB" in redraw
    bar = redraw.split("Downloading [", 1)[1].split("]")[0]
    assert len(bar) == 50
    assert bar.count("=") == 24
    assert ">" in bar


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("registry.example", False),
        ("127.example.com", False),
    ],
)
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_insecure_rules(tmp_path: Path) -> None:
    t = Transport(insecure={"reg.lan:5000"}, certs_dirs=(tmp_path,))
    assert t.is_insecure("127.0.0.1:5000")
    assert t.is_insecure("reg.lan:5000")
    assert not t.is_insecure("ghcr.io")
    assert not Transport(loopback_insecure=False).is_insecure("localhost:5000")
    assert Transport(tls_verify=False).is_insecure("ghcr.io")
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("ghcr.io") == "ghcr.io"
    # A secure registry is HTTPS without any probe (no network needed to decide).
    assert t.base_url("ghcr.io") == "https://ghcr.io"
    assert t.base_url("docker.io") == "https://registry-1.docker.io"


@pytest.mark.parametrize(
    ("text", "value"), [("false", False), ("0", False), ("TRUE", True), ("yes", True)]
)
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-fake"
    log = tmp_path / "asked"
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {log}\n'
        'if [ "$server" = "helped.example" ]; then\n'
        '  echo \'{"ServerURL":"helped.example","Username":"hu","Secret":"hs"}\'\n'
        "else echo 'credentials not found' >&2; exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"helped.example": "fake"}}))
    creds = Credentials.load(config)
    assert creds.get("helped.example") == ("hu", "hs")
    assert creds.get("other.example") is None  # no helper for it
    config.write_text(json.dumps({"credsStore": "fake"}))
    assert Credentials.load(config).get("other.example") is None  # helper says not found
    assert log.read_text().splitlines() == ["get helped.example", "get other.example"]
