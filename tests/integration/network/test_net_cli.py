"""`portique network ...` and `portique port` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portique.network.networks import Networks
from support.net_helpers import random_subnet, ruleset, teardown_networks


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[dict[str, str], Networks]]:
    env = dict(os.environ)
    env["PORTIQUE_ROOT"] = str(tmp_path / "root")
    env["PORTIQUE_RUNROOT"] = str(tmp_path / "run")
    nets = Networks(tmp_path / "root", run_root=tmp_path / "run")
    yield env, nets
    teardown_networks(nets)
    nets.close()


def pq(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portique", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_network_verbs(cli: tuple[dict[str, str], Networks]) -> None:
    env, nets = cli
    subnet = random_subnet()
    r = pq(env, "network", "create", "--subnet", subnet, "--label", "team=web", "app")
    assert r.returncode == 0, r.stderr
    net_id = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", net_id)
    assert f"network {net_id[:12]}" in ruleset()

    r = pq(env, "network", "create", "app")
    assert r.returncode == 125
    assert r.stderr == "portique: network with name app already exists\n"
    r = pq(env, "network", "create", "--subnet", subnet, "app2")
    assert r.returncode == 125
    assert "overlaps" in r.stderr
    assert len(r.stderr.splitlines()) == 1

    r = pq(env, "network", "ls")
    lines = r.stdout.splitlines()
    assert re.match(r"NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$", lines[0])
    assert re.match(rf"{net_id[:12]}\s+app\s+bridge\s+local$", lines[1])
    assert re.match(r"[0-9a-f]{12}\s+bridge\s+bridge\s+local$", lines[2])
    assert re.match(r"[0-9a-f]{12}\s+host\s+host\s+local$", lines[3])
    assert re.match(r"[0-9a-f]{12}\s+none\s+null\s+local$", lines[4])
    assert len(lines) == 5
    builtin = pq(env, "network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}")
    assert builtin.stdout == "bridge\nhost\nnone\n"
    (none,) = json.loads(pq(env, "network", "inspect", "none").stdout)
    assert (none["Driver"], none["Containers"]) == ("null", {})
    # Stable IDs: the same in ls and inspect, and on every call.
    none_id = pq(env, "network", "ls", "-q", "--no-trunc", "--filter", "name=none").stdout.strip()
    assert none["Id"] == none_id
    assert pq(env, "network", "ls", "-q", "--filter", "name=app").stdout == net_id[:12] + "\n"
    assert (
        pq(env, "network", "ls", "--filter", "label=team=web", "--format", "{{.Name}}").stdout
        == "app\n"
    )
    assert (
        pq(env, "network", "ls", "-q", "--filter", "type=custom", "--no-trunc").stdout
        == net_id + "\n"
    )

    r = pq(env, "network", "inspect", "app")
    (obj,) = json.loads(r.stdout)
    assert obj["Id"] == net_id
    assert obj["Driver"] == "bridge"
    assert obj["Scope"] == "local"
    assert obj["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": subnet.replace(".0/24", ".1")}]
    assert obj["Labels"] == {"team": "web"}
    assert obj["Internal"] is False
    assert obj["Containers"] == {}
    r = pq(env, "network", "inspect", "-f", "{{.Name}} {{.Internal}}", net_id[:8])
    assert r.stdout == "app false\n"
    r = pq(env, "network", "inspect", "nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such network: nope\n")
    for verb in ("rm", "connect", "disconnect"):
        r = pq(env, "network", verb, "nope", *(["c"] if verb != "rm" else []))
        assert (r.returncode, r.stderr) == (1, "Error: No such network: nope\n"), verb
    r = pq(env, "network", "rm", "-f", "nope")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")

    r = pq(env, "network", "rm", "bridge")
    assert r.returncode == 125
    assert "pre-defined" in r.stderr
    r = pq(env, "network", "connect", "app", "no-such-container")
    assert r.returncode == 1
    assert r.stderr == "Error: No such container: no-such-container\n"
    r = pq(env, "port", "no-such-container")
    assert (r.returncode, r.stderr) == (1, "Error: No such container: no-such-container\n")

    r = pq(
        env, "network", "create", "--internal", "-o", "com.docker.network.driver.mtu=1400", "sealed"
    )
    assert r.returncode == 0, r.stderr
    sealed = nets.inspect("sealed")
    assert sealed.internal
    assert sealed.mtu == 1400
    assert pq(env, "network", "create", "-d", "overlay", "x").returncode == 125

    r = pq(env, "network", "rm", "app")
    assert (r.returncode, r.stdout) == (0, "app\n")
    r = pq(env, "network", "prune", "-f")
    assert r.stdout == "Deleted Networks:\nsealed\n"
    assert [n.name for n in nets.list()] == ["bridge"]
    assert f"network {net_id[:12]}" not in ruleset()
