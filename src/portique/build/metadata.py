"""The image a stage builds: its config and history, as instructions change them.

`StageState` is a stage's image so far (the whole OCI image config document,
its layers, the cache key of its last step). The metadata instructions (ENV,
LABEL, CMD, ENTRYPOINT, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL,
ONBUILD, HEALTHCHECK, MAINTAINER) change only the config (`apply`); each step
adds a history entry (`add_history`), and RUN/COPY/ADD a layer (`add_layer`).
`documents` turns the final state into the config and manifest to store.
No I/O here: build/builder.py runs the steps.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from portique.build.dockerfile import DockerfileError, Instruction, expand, parse_key_values
from portique.duration import InvalidDuration, parse_duration
from portique.oci import image as oci
from portique.oci.digest import sha256_digest
from portique.words import set_env, split_words

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HEALTHCHECK_DURATIONS = (
    ("interval", "Interval"),
    ("timeout", "Timeout"),
    ("start-period", "StartPeriod"),
    ("start-interval", "StartInterval"),
)


@dataclass(slots=True)
class StageState:
    config: dict[str, Any]  # the whole OCI image config document
    layers: list[dict[str, Any]]  # OCI descriptors, bottom first
    key: str  # cache key of the last step
    args: dict[str, str]  # ARGs in scope with their values
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd_set: bool = False  # a CMD was given in this stage (ENTRYPOINT then keeps it)
    image: str = ""  # the image of the last step (its parent's, "" for scratch)

    @property
    def cfg(self) -> dict[str, Any]:
        c: dict[str, Any] = self.config.setdefault("config", {})
        return c

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.cfg.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def scope(self) -> dict[str, str]:
        """Variables for substitution: ARGs, overridden by ENV (Docker's order)."""
        return {**self.args, **self.env()}


def scratch_config() -> dict[str, Any]:
    """The config of a stage built `FROM scratch`."""
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


def base_config(config: dict[str, Any]) -> dict[str, Any]:
    """A base image's config made ready for steps on top (changed in place)."""
    cfg = config.setdefault("config", {}) or {}
    config["config"] = cfg
    env = cfg.get("Env") or []
    if not any(e.startswith("PATH=") for e in env):
        # A base without PATH gets the default one, as BuildKit and buildah do.
        cfg["Env"] = [f"PATH={DEFAULT_PATH}", *env]
    config.setdefault("history", [])
    return config


def apply(
    instr: Instruction, state: StageState, scope: dict[str, str], where: str, escape: str
) -> None:
    """Apply a metadata instruction to the stage's config."""
    cfg = state.cfg
    cmd = instr.cmd
    if cmd == "ENV":
        pairs = parse_key_values(expand(instr.rest, scope, escape=escape), cmd, where=where)
        cfg["Env"] = set_env(cfg.get("Env") or [], pairs)
    elif cmd == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(parse_key_values(expand(instr.rest, scope, escape=escape), cmd, where=where))
        cfg["Labels"] = labels
    elif cmd == "MAINTAINER":
        state.config["author"] = instr.rest
    elif cmd in ("CMD", "ENTRYPOINT"):
        argv = list(instr.exec_form) if instr.exec_form is not None else [*state.shell, instr.rest]
        cfg["Cmd" if cmd == "CMD" else "Entrypoint"] = argv
        if cmd == "CMD":
            state.cmd_set = True
        elif not state.cmd_set:
            # An ENTRYPOINT resets a CMD inherited from the base, as Docker does.
            cfg["Cmd"] = None
    elif cmd == "WORKDIR":
        path = expand(instr.rest, scope, escape=escape)
        if not path.startswith("/"):
            path = os.path.join(cfg.get("WorkingDir") or "/", path)
        cfg["WorkingDir"] = os.path.normpath(path)
    elif cmd == "USER":
        cfg["User"] = expand(instr.rest, scope, escape=escape)
    elif cmd == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in split_words(expand(instr.rest, scope, escape=escape)):
            port, _, proto = word.partition("/")
            if not port.replace("-", "").isdigit():
                raise DockerfileError(f"{where}: invalid port {word!r}")
            ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
        cfg["ExposedPorts"] = ports
    elif cmd == "VOLUME":
        vols = dict(cfg.get("Volumes") or {})
        names = (
            instr.exec_form
            if instr.exec_form is not None
            else split_words(expand(instr.rest, scope))
        )
        for v in names:
            if not v:
                raise DockerfileError(f"{where}: VOLUME specified can not be an empty string")
            vols[v] = {}
        cfg["Volumes"] = vols
    elif cmd == "STOPSIGNAL":
        cfg["StopSignal"] = expand(instr.rest, scope, escape=escape)
    elif cmd == "SHELL":
        assert instr.exec_form is not None
        if not instr.exec_form:
            raise DockerfileError(f"{where}: SHELL requires at least one argument")
        state.shell = instr.exec_form
        cfg["Shell"] = list(instr.exec_form)
    elif cmd == "ONBUILD":
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), instr.rest]
    elif cmd == "HEALTHCHECK":
        cfg["Healthcheck"] = healthcheck(instr, where)
    else:  # pragma: no cover - the parser knows every instruction
        raise DockerfileError(f"{where}: unsupported instruction {cmd}")


def healthcheck(instr: Instruction, where: str) -> dict[str, Any]:
    """The config's Healthcheck for a HEALTHCHECK instruction (durations in ns)."""
    words = instr.rest.split(None, 1)
    if words[0].upper() == "NONE":
        return {"Test": ["NONE"]}
    rest = words[1] if len(words) > 1 else ""
    hc: dict[str, Any] = {}
    for name, key in HEALTHCHECK_DURATIONS:
        v = instr.flag(name)
        if v is not None:
            hc[key] = _duration_ns(v, where)
    retries = instr.flag("retries")
    if retries is not None:
        if not (retries.isascii() and retries.isdigit()):
            raise DockerfileError(f"{where}: HEALTHCHECK --retries must be a number")
        hc["Retries"] = int(retries)
    body = rest.strip()
    if body.startswith("["):
        try:
            argv = json.loads(body)
        except ValueError:
            argv = None
        if isinstance(argv, list):
            hc["Test"] = ["CMD", *argv]
            return hc
    hc["Test"] = ["CMD-SHELL", body]
    return hc


def _duration_ns(text: str, where: str) -> int:
    if not text:
        return 0  # `--interval=`: the default, as BuildKit reads it
    try:
        ns = parse_duration(text)
    except InvalidDuration as exc:
        raise DockerfileError(f"{where}: {exc.message}") from None
    if ns < 0:
        raise DockerfileError(f"{where}: invalid duration {text!r}: it is negative")
    return ns


def add_history(state: StageState, instr: Instruction, *, empty: bool) -> None:
    now = _now()
    state.config["created"] = now
    entry: dict[str, Any] = {
        "created": now,
        "created_by": created_by(instr),
        "comment": "buildkit.dockerfile.v0",
    }
    if empty:
        entry["empty_layer"] = True
    state.config.setdefault("history", []).append(entry)


def add_layer(state: StageState, layer: oci.Descriptor, diff_id: str, instr: Instruction) -> None:
    """Record the layer a step made: in the layer list, rootfs.diff_ids and the history."""
    state.layers.append(layer.to_json())
    rootfs = state.config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs.setdefault("diff_ids", []).append(diff_id)
    add_history(state, instr, empty=False)


def created_by(instr: Instruction) -> str:
    if instr.cmd == "RUN":
        return f"RUN {instr.rest}"
    return f"{instr.cmd} {instr.rest}"


def documents(state: StageState) -> tuple[bytes, bytes]:
    """The final image config and its OCI manifest, as the bytes to store."""
    config = copy.deepcopy(state.config)
    config.setdefault("architecture", "amd64")
    config.setdefault("os", "linux")
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    manifest = oci.new_manifest(sha256_digest(config_bytes), len(config_bytes), state.layers)
    return config_bytes, json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
