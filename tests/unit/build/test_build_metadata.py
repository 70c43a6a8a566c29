"""build/metadata.py: the config and history a stage's instructions make (pure)."""

from __future__ import annotations

import hashlib
import json

import pytest

from portique.build import metadata
from portique.build.dockerfile import DockerfileError, Instruction, parse
from portique.build.metadata import StageState


def instructions(text: str) -> list[Instruction]:
    return list(parse("FROM scratch\n" + text).instructions[1:])


def applied(text: str, env: list[str] | None = None) -> StageState:
    state = StageState(metadata.scratch_config(), [], "", {})
    if env is not None:
        state.cfg["Env"] = env
    for i, instr in enumerate(instructions(text)):
        metadata.apply(instr, state, state.scope(), f"Dockerfile:{i + 2}", "\\")
    return state


def test_env_sets_in_place_and_expands() -> None:
    state = applied("ENV A=1 B=$A\nENV PATH=/x:$PATH\n", env=["PATH=/bin", "A=0"])
    assert state.cfg["Env"] == ["PATH=/x:/bin", "A=1", "B=0"]


def test_entrypoint_resets_an_inherited_cmd_but_not_its_own() -> None:
    state = applied('ENTRYPOINT ["/e"]\n')
    assert state.cfg["Cmd"] is None
    state = applied('CMD ["c"]\nENTRYPOINT ["/e"]\n')
    assert (state.cfg["Cmd"], state.cfg["Entrypoint"]) == (["c"], ["/e"])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "--interval=1m30s --timeout=500ms --retries=3",
            {"Interval": 90 * 10**9, "Timeout": 5 * 10**8, "Retries": 3},
        ),
        ("--start-period=0 --start-interval=1.5s", {"StartPeriod": 0, "StartInterval": 15 * 10**8}),
        ("--interval=", {"Interval": 0}),
    ],
)
def test_healthcheck_durations_are_go_durations(flags: str, expected: dict[str, int]) -> None:
    hc = applied(f"HEALTHCHECK {flags} CMD true\n").cfg["Healthcheck"]
    assert hc == {**expected, "Test": ["CMD-SHELL", "true"]}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--interval=5", "Dockerfile:2: invalid duration '5': missing unit"),
        ("--timeout=-1s", "Dockerfile:2: invalid duration '-1s': it is negative"),
        ("--timeout=1.5.3s", "Dockerfile:2: invalid duration '1.5.3s'"),
        ("--retries=\u00b2", "Dockerfile:2: HEALTHCHECK --retries must be a number"),
    ],
)
def test_healthcheck_refusals(flags: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        applied(f"HEALTHCHECK {flags} CMD true\n")
    assert info.value.message.startswith(message)


def test_documents_are_canonical_json_naming_each_other() -> None:
    state = applied("LABEL b=2 a=1\n")
    state.layers.append({"mediaType": "m", "digest": "sha256:" + "0" * 64, "size": 3})
    metadata.add_history(state, instructions("LABEL b=2 a=1\n")[0], empty=True)
    config_bytes, manifest_bytes = metadata.documents(state)
    config = json.loads(config_bytes)
    assert config_bytes == json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    assert config["history"][0]["created_by"] == "LABEL b=2 a=1"
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert manifest["config"]["size"] == len(config_bytes)
    assert manifest["layers"] == state.layers
    assert manifest_bytes == json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
