"""`portique build`: run a Dockerfile's stages and commit the result as an image.

Each stage starts from its base (an image, `scratch`, or an earlier stage)
and applies its instructions in order:

- metadata instructions (ENV, CMD, LABEL, ...) change the image config only;
- RUN mounts an overlay of the stage's layers plus a fresh upper directory,
  runs the command there through the runtime library, confined like a
  default `portique run` container and with its output through a pipe
  (build/step.py; network `none` unless asked), and turns the upper
  directory into a layer (`Images.layer_from_dir`);
- COPY/ADD mount the same overlay and copy into it, no container needed.

Cache: every step has a key, sha256 over the parent step's key, the
instruction after variable expansion, the build args in scope, and for
COPY/ADD the content checksum of the sources. The cache maps a key to the
complete result of that step (image config and layer list), so a fully cached
rebuild runs nothing, writes no layer, and yields the very same image ID.
Cache rows live in the engine database (component "build"); a row whose
layer blobs are gone is ignored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from portique import db, faults, journal
from portique.build.context import BuildContext
from portique.build.dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    expand,
    parse,
    parse_key_values,
    split_words,
)
from portique.build.stages import Plan, Stage, parse_arg, plan, stage_names, stage_ref
from portique.errors import InvalidArgument, PortiqueError

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images

MIGRATIONS = [
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        config TEXT NOT NULL,   -- the image config JSON after the step
        layers TEXT NOT NULL,   -- JSON list of OCI layer descriptors
        created REAL NOT NULL
    );
    """
]
DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Build args Docker accepts without an ARG declaration.
PREDEFINED_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)  # fmt: skip


class BuildStepFailed(PortiqueError):
    """A RUN step exited non-zero; the build exits with the step's own code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


@dataclass(slots=True)
class BuildOptions:
    context: Path
    dockerfile: Path | None = None
    tags: list[str] = field(default_factory=list)
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    network: str = "none"
    platform: str | None = None


@dataclass(slots=True)
class StageState:
    config: dict[str, Any]  # the whole OCI image config document
    layers: list[dict[str, Any]]  # OCI descriptors, bottom first
    key: str  # cache key of the last step
    args: dict[str, str]  # ARGs in scope with their values
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd_set: bool = False  # a CMD was given in this stage (ENTRYPOINT then keeps it)

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


def _sha(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


class Builder:
    """`runtime_root`: the runtime library's state directory for RUN steps
    (the engine's <runroot>/runtime)."""

    def __init__(self, images: Images, runtime_root: Path, out: TextIO | None = None) -> None:
        self.images = images
        self.root = images.root
        self.runtime_root = runtime_root
        self.out = out if out is not None else sys.stdout
        self.conn = db.connect(self.root)
        db.migrate(self.conn, "build", MIGRATIONS)
        journal.ensure(self.conn)
        self._op: journal.Operation | None = None
        self.step = 0
        self.total = 0
        self.quiet = False

    # -- output -----------------------------------------------------------

    def say(self, text: str) -> None:
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    # -- entry point --------------------------------------------------------

    def build(self, opts: BuildOptions) -> ImageRecord:
        """Build and register the image; every mount made on the way is undone.

        The build's journal entry (portique/journal.py) names each step's work
        dir, overlay mount and runtime container while they exist, so a killed
        build is undone by the next command that recovers.
        """
        with ExitStack() as stack:
            self._stack = stack
            self._op = journal.Operation.begin(self.conn, "build", str(opts.context))
            stack.callback(self._end_journal)
            return self._build(opts)

    def _end_journal(self) -> None:
        op, self._op = self._op, None
        # Its layer blobs are now in the image or the cache. A step whose clean-up
        # failed keeps its resources: the entry then stays, and is recovered once
        # this process is gone.
        if op is not None and all(r["type"] == "blob" for r in op.resources):
            op.end()

    def _build(self, opts: BuildOptions) -> ImageRecord:
        # What one build works on; the step methods read it from self.
        self.opts = opts
        self.quiet = opts.quiet
        self.ctx = BuildContext.from_dir(opts.context)
        self.df = self._read_dockerfile()
        self.plan = plan(self.df, build_args=opts.build_args, target=opts.target)
        self.states = {}
        self._check_build_args()
        self.total = sum(len(self.plan.stages[i].instructions) + 1 for i in self.plan.needed)
        for stage in self.plan.stages:
            if stage.index in self.plan.needed:
                self.states[stage.index] = self._run_stage(stage)
        final = self.states[self.plan.target]
        if opts.labels:
            labels = dict(final.cfg.get("Labels") or {})
            labels.update(opts.labels)
            final.cfg["Labels"] = labels
        record = self._commit(final, opts.tags)
        self.say(f"Successfully built {record.id.removeprefix('sha256:')[:12]}")
        from portique.oci.reference import parse_reference

        for tag in opts.tags:
            self.say(f"Successfully tagged {parse_reference(tag).familiar()}")
        return record

    def _read_dockerfile(self) -> Dockerfile:
        path, root = self.opts.dockerfile, self.ctx.root
        if path is None:
            path = root / "Dockerfile"
            if not path.exists() and (root / "Containerfile").exists():
                path = root / "Containerfile"
        elif not path.is_absolute():
            path = root / path
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InvalidArgument(f"cannot read Dockerfile {path}: no such file") from None
        return parse(text, filename=path.name)

    def _check_build_args(self) -> None:
        declared = {
            name
            for instr in self.df.instructions
            if instr.cmd == "ARG"
            for name, _ in parse_arg(instr, self.df.filename)
        }
        unused = sorted(set(self.opts.build_args) - declared - PREDEFINED_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args {unused} were not consumed")

    # -- stages -------------------------------------------------------------

    def _base_state(self, stage: Stage) -> StageState:
        names = stage_names(self.plan.stages)
        ref = stage_ref(stage.base, names, before=stage.index)
        if ref is not None:
            base = self.states[ref]
            return StageState(copy.deepcopy(base.config), list(base.layers), base.key, {})
        if stage.base == "scratch":
            config = {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }
            return StageState(config, [], _sha("scratch"), {})
        image = self._base_image(stage.base, pull=self.opts.pull, platform=self.opts.platform)
        config = json.loads(self.images.store.read_bytes(image.id))
        cfg = config.setdefault("config", {}) or {}
        config["config"] = cfg
        env = cfg.get("Env") or []
        if not any(e.startswith("PATH=") for e in env):
            # A base without PATH gets the default one, as BuildKit and buildah do.
            cfg["Env"] = [f"PATH={DEFAULT_PATH}", *env]
        config.setdefault("history", [])
        manifest = json.loads(self.images.store.read_bytes(image.manifest_digest))
        return StageState(config, list(manifest["layers"]), _sha("image", image.id), {})

    def _base_image(self, name: str, *, pull: bool, platform: str | None) -> ImageRecord:
        from portique.errors import NotFound

        if not pull:
            try:
                return self.images.resolve(name)
            except NotFound:
                pass
        from portique.image.pull import pull as pull_image

        self.say(f"Pulling {name}")
        return pull_image(self.images, name, platform=platform)

    def _run_stage(
        self,
        stage: Stage,
    ) -> StageState:
        self.step += 1
        label = f" AS {stage.name}" if stage.name else ""
        self.say(f"Step {self.step}/{self.total} : FROM {stage.base}{label}")
        state = self._base_state(stage)
        state.args = {}
        instructions = list(stage.instructions)
        onbuild = state.cfg.pop("OnBuild", None) or []
        if onbuild:
            extra = parse("\n".join(onbuild), filename=f"ONBUILD of {stage.base}")
            instructions = list(extra.instructions) + instructions
            self.total += len(extra.instructions)
        for instr in instructions:
            self.step += 1
            self.say(f"Step {self.step}/{self.total} : {instr.original}")
            state = self._step(instr, state, stage)
        return state

    # -- one instruction ------------------------------------------------------

    def _step(
        self,
        instr: Instruction,
        state: StageState,
        stage: Stage,
    ) -> StageState:
        where = f"{self.df.filename}:{instr.line}"
        if instr.cmd == "ARG":
            for name, default in parse_arg(instr, self.df.filename):
                if name in self.opts.build_args:
                    value = self.opts.build_args[name]
                elif default is not None:
                    value = expand(default, state.scope(), escape=self.df.escape)
                elif name in self.plan.global_args and self.plan.global_args[name] is not None:
                    value = str(self.plan.global_args[name])
                else:
                    continue
                state.args[name] = value
            state.key = _sha(state.key, "ARG", sorted(state.args.items()))
            return state
        scope = state.scope()
        if instr.cmd in ("RUN", "COPY", "ADD"):
            extra: object = None
            sources: list[Any] = []
            if instr.cmd != "RUN":
                sources, extra = self._copy_sources(instr, state, stage, scope)
            text = instr.original if instr.cmd == "RUN" else expand(instr.original, scope)
            heredocs = [h.content for h in instr.heredocs]
            key = _sha(
                state.key, text, heredocs, sorted(state.args.items()), extra, self.opts.network
            )
            cached = None if self.opts.no_cache else self._cache_get(key)
            if cached is not None:
                self.say(" ---> Using cache")
                state.config, state.layers = cached
                state.key = key
                self.say(f" ---> {_short(state)}")
                return state
            if instr.cmd == "RUN":
                self._run(instr, state, where)
            else:
                self._copy(instr, state, sources, where)
            state.key = key
            self._cache_put(key, state)
            self.say(f" ---> {_short(state)}")
            return state
        self._metadata(instr, state, scope, where)
        state.key = _sha(state.key, instr.cmd, json.dumps(state.cfg, sort_keys=True))
        self._add_history(state, instr, empty=True)
        # Metadata steps are cached too so that the config (and its created
        # time) of a fully cached build is identical, hence the same image ID.
        cached = None if self.opts.no_cache else self._cache_get(state.key)
        if cached is not None:
            state.config, state.layers = cached
        else:
            self._cache_put(state.key, state)
        self.say(f" ---> {_short(state)}")
        return state

    def _metadata(
        self,
        instr: Instruction,
        state: StageState,
        scope: dict[str, str],
        where: str,
    ) -> None:
        cfg = state.cfg
        cmd = instr.cmd
        if cmd == "ENV":
            env = state.env()
            for k, v in parse_key_values(
                expand(instr.rest, scope, escape=self.df.escape), cmd, where=where
            ):
                env[k] = v
            cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif cmd == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(
                parse_key_values(expand(instr.rest, scope, escape=self.df.escape), cmd, where=where)
            )
            cfg["Labels"] = labels
        elif cmd == "MAINTAINER":
            state.config["author"] = instr.rest
        elif cmd in ("CMD", "ENTRYPOINT"):
            argv = (
                list(instr.exec_form) if instr.exec_form is not None else [*state.shell, instr.rest]
            )
            cfg["Cmd" if cmd == "CMD" else "Entrypoint"] = argv
            if cmd == "CMD":
                state.cmd_set = True
            elif not state.cmd_set:
                # An ENTRYPOINT resets a CMD inherited from the base, as Docker does.
                cfg["Cmd"] = None
        elif cmd == "WORKDIR":
            path = expand(instr.rest, scope, escape=self.df.escape)
            if not path.startswith("/"):
                path = os.path.join(cfg.get("WorkingDir") or "/", path)
            cfg["WorkingDir"] = os.path.normpath(path)
        elif cmd == "USER":
            cfg["User"] = expand(instr.rest, scope, escape=self.df.escape)
        elif cmd == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for word in split_words(expand(instr.rest, scope, escape=self.df.escape)):
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
            cfg["StopSignal"] = expand(instr.rest, scope, escape=self.df.escape)
        elif cmd == "SHELL":
            assert instr.exec_form is not None
            if not instr.exec_form:
                raise DockerfileError(f"{where}: SHELL requires at least one argument")
            state.shell = instr.exec_form
            cfg["Shell"] = list(instr.exec_form)
        elif cmd == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), instr.rest]
        elif cmd == "HEALTHCHECK":
            cfg["Healthcheck"] = _healthcheck(instr, state.shell, where)
        else:  # pragma: no cover - the parser knows every instruction
            raise DockerfileError(f"{where}: unsupported instruction {cmd}")

    # -- RUN ------------------------------------------------------------------

    def _run(self, instr: Instruction, state: StageState, where: str) -> None:
        if instr.exec_form is not None:
            argv = list(instr.exec_form)
        elif instr.heredocs and instr.rest.strip().startswith("<<"):
            # `RUN <<EOF` runs the heredoc as a script with the shell.
            argv = [*state.shell[:1], "-c", instr.heredocs[0].content]
        else:
            script = instr.rest
            if instr.heredocs:
                for h in instr.heredocs:
                    script += "\n" + h.content + h.name
            argv = [*state.shell, script]
        env = state.env()
        for k, v in state.args.items():
            env.setdefault(k, v)
        env.setdefault("PATH", DEFAULT_PATH)
        with self._mounted(state) as (rootfs, upper):
            workdir = state.cfg.get("WorkingDir") or "/"
            from portique.rootpath import dir_in_root

            with dir_in_root(str(rootfs), workdir, mkdirs=True):
                pass
            faults.point("build.run-starting")
            code = self._run_container(rootfs, argv, env, workdir, state.cfg.get("User") or "")
            faults.point("build.run-finished")
            if code != 0:
                shown = json.dumps(argv) if instr.exec_form is not None else " ".join(argv)
                raise BuildStepFailed(
                    f"{where}: the command '{shown}' returned a non-zero code: {code}", code
                )
            self._commit_layer(state, upper, instr)

    def _run_container(
        self,
        rootfs: Path,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        user: str,
    ) -> int:
        from portique.build.step import run_step, step_spec
        from portique.fileio import atomic_write_json
        from portique.runtime.confinement import default_confinement, host_capabilities

        # Confined as a default `portique run` container is (build/step.py).
        spec = step_spec(
            rootfs=rootfs,
            argv=argv,
            env=env,
            cwd=cwd,
            user=_resolve_user(user, rootfs),
            network=self.opts.network,
            confinement=default_confinement(host_capabilities()),
        )
        bundle = rootfs.parent / "bundle"
        bundle.mkdir(exist_ok=True)
        atomic_write_json(bundle / "config.json", spec)
        cid = "build-" + os.urandom(16).hex()
        out = None if self.quiet else self.out
        return run_step(self.runtime_root, cid, bundle, out)

    # -- COPY / ADD -----------------------------------------------------------

    def _copy_sources(
        self,
        instr: Instruction,
        state: StageState,
        stage: Stage,
        scope: dict[str, str],
    ) -> tuple[list[Any], object]:
        if instr.heredocs:
            return [], [h.content for h in instr.heredocs]
        words = (
            list(instr.exec_form)
            if instr.exec_form is not None
            else split_words(instr.rest, self.df.escape)
        )
        words = [expand(w, scope, escape=self.df.escape) for w in words]
        srcs = words[:-1]
        for s in srcs:
            if "://" in s:
                raise InvalidArgument(
                    f"{self.df.filename}:{instr.line}: {instr.cmd} from a URL is not supported"
                    " (no network during builds here): download it into the context first"
                )
        from_ = instr.flag("from") if instr.cmd == "COPY" else None
        source_ctx = self.ctx
        if from_ is not None:
            source_ctx = self._from_context(expand(from_, scope), stage)
        resolved = [source_ctx.sources(s) for s in srcs]
        flat = [x for group in resolved for x in group]
        checksum = source_ctx.checksum(flat)
        return [source_ctx, resolved], [checksum, dict(instr.flags), words[-1]]

    def _from_context(self, name: str, stage: Stage) -> BuildContext:
        names = stage_names(self.plan.stages)
        ref = stage_ref(name, names, before=stage.index)
        if ref is not None:
            src_state = self.states[ref]
        else:
            image = self._base_image(name, pull=False, platform=self.opts.platform)
            manifest = json.loads(self.images.store.read_bytes(image.manifest_digest))
            src_state = StageState({}, list(manifest["layers"]), "", {})
        rootfs, _ = self._stack.enter_context(self._mounted(src_state))
        return BuildContext(rootfs)

    def _copy(
        self,
        instr: Instruction,
        state: StageState,
        sources: list[Any],
        where: str,
    ) -> None:
        from portique.build.copy import copy_sources, parse_chmod, resolve_owner

        with self._mounted(state) as (rootfs, upper):
            words = split_words(instr.rest) if instr.exec_form is None else list(instr.exec_form)
            dest = expand(words[-1], state.scope())
            workdir = state.cfg.get("WorkingDir") or "/"
            owner = (
                resolve_owner(instr.flag("chown") or "", rootfs) if instr.flag("chown") else None
            )
            chmod = parse_chmod(instr.flag("chmod") or "") if instr.flag("chmod") else None
            if instr.heredocs:
                from portique.rootpath import dir_in_root

                path = dest if dest.startswith("/") else os.path.join(workdir, dest)
                parent, name = os.path.split(os.path.normpath(path))
                with dir_in_root(str(rootfs), parent, mkdirs=True) as dfd:
                    fd = os.open(
                        name,
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                        0o644,
                        dir_fd=dfd,
                    )
                    with os.fdopen(fd, "w") as f:
                        f.write(instr.heredocs[0].content)
                    if owner:
                        os.chown(name, owner.uid, owner.gid, dir_fd=dfd, follow_symlinks=False)
                    if chmod is not None:
                        os.chmod(name, chmod, dir_fd=dfd)
            else:
                source_ctx, groups = sources
                flat = [s for g in groups for s in g]
                multiple = len(flat) > 1 or any(any(c in w for c in "*?[") for w in words[:-1])
                copy_sources(
                    source_ctx,
                    flat,
                    rootfs,
                    dest,
                    workdir=workdir,
                    owner=owner,
                    chmod=chmod,
                    multiple=multiple,
                    unpack_archives=instr.cmd == "ADD",
                )
            self._commit_layer(state, upper, instr)

    # -- layers, mounts, cache ------------------------------------------------

    @contextmanager
    def _mounted(self, state: StageState) -> Iterator[tuple[Path, Path]]:
        """An overlay of the state's layers plus a fresh upper dir; yields (rootfs, upper)."""
        from portique.image.snapshots import mount_overlay, unmount_overlay
        from portique.oci.image import parse_descriptor

        descs = [parse_descriptor(d, f"layers[{i}]") for i, d in enumerate(state.layers)]
        lowers = list(reversed(self.images.unpack_layers(descs))) if descs else []
        work_root = self.root / "build" / os.urandom(8).hex()
        # Recorded before they exist; undone newest first: a RUN's runtime
        # container (its bundle is <work_root>/bundle), the mount, the dir.
        step: list[journal.Resource] = [
            {"type": "tree", "path": str(work_root)},
            {"type": "overlay", "dir": str(work_root)},
            {
                "type": "runtime",
                "root": str(self.runtime_root),
                "bundle": str(work_root / "bundle"),
            },
        ]
        if self._op is not None:
            self._op.add(*step)
        work_root.mkdir(parents=True)
        mounted = False
        try:
            rootfs = mount_overlay(
                self.images.snapshots.dir, lowers or [self.images.snapshots.empty], work_root
            )
            mounted = True
            faults.point("build.step-mounted")
            yield rootfs, work_root / "upper"
        finally:
            if mounted:
                unmount_overlay(work_root)
            # Never through a mount: a failed unmount raised above, and the
            # journal keeps the step for the recovery.
            shutil.rmtree(work_root, ignore_errors=True)
            if self._op is not None and not work_root.exists():
                self._op.drop(*step)

    def _commit_layer(self, state: StageState, upper: Path, instr: Instruction) -> None:
        desc, diff_id = self.images.layer_from_dir(upper)
        if self._op is not None:
            self._op.add({"type": "blob", "digest": desc.digest})
        faults.point("build.layer-stored")
        state.layers.append(desc.to_json())
        rootfs = state.config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs.setdefault("diff_ids", []).append(diff_id)
        self._add_history(state, instr, empty=False)

    def _add_history(self, state: StageState, instr: Instruction, *, empty: bool) -> None:
        now = _now()
        state.config["created"] = now
        entry: dict[str, Any] = {
            "created": now,
            "created_by": _created_by(instr),
            "comment": "buildkit.dockerfile.v0",
        }
        if empty:
            entry["empty_layer"] = True
        state.config.setdefault("history", []).append(entry)

    def _cache_get(self, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        row = self.conn.execute(
            "SELECT config, layers FROM build_cache WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        layers = json.loads(row["layers"])
        if not all(self.images.store.has(d["digest"]) for d in layers):
            return None
        return json.loads(row["config"]), layers

    def _cache_put(self, key: str, state: StageState) -> None:
        with db.transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO build_cache(key, config, layers, created) VALUES (?, ?, ?, ?)",
                (
                    key,
                    json.dumps(state.config),
                    json.dumps(state.layers),
                    time.time(),
                ),
            )

    def _commit(self, state: StageState, tags: list[str]) -> ImageRecord:
        from portique.oci.image import MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST

        config = copy.deepcopy(state.config)
        config.setdefault("architecture", "amd64")
        config.setdefault("os", "linux")
        config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_digest = self.images.store.write_bytes(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": state.layers,
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        manifest_digest = self.images.store.write_bytes(manifest_bytes)
        faults.point("build.before-register")
        return self.images.register(manifest_bytes, manifest_digest, config_bytes, tags=tags)

    # Set for the length of one build(): the read-only mounts of other stages
    # that COPY --from reads (undone when the build ends), and its inputs.
    _stack: ExitStack
    opts: BuildOptions
    ctx: BuildContext
    df: Dockerfile
    plan: Plan
    states: dict[int, StageState]


def _short(state: StageState) -> str:
    return _sha(state.key)[7:19]


def _created_by(instr: Instruction) -> str:
    if instr.cmd == "RUN":
        return f"RUN {instr.rest}"
    return f"{instr.cmd} {instr.rest}"


def _resolve_user(user: str, rootfs: Path) -> dict[str, Any]:
    if not user:
        return {"uid": 0, "gid": 0}
    from portique.build.copy import resolve_owner

    owner = resolve_owner(user, rootfs)
    return {"uid": owner.uid, "gid": owner.gid}


def _healthcheck(instr: Instruction, shell: tuple[str, ...], where: str) -> dict[str, Any]:
    words = instr.rest.split(None, 1)
    if words[0].upper() == "NONE":
        return {"Test": ["NONE"]}
    rest = words[1] if len(words) > 1 else ""
    hc: dict[str, Any] = {}
    for name, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        v = instr.flag(name)
        if v is not None:
            hc[key] = _duration_ns(v, where)
    retries = instr.flag("retries")
    if retries is not None:
        if not retries.isdigit():
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
    units = {
        "ns": 1,
        "us": 1_000,
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
    }
    total = 0
    num = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else c
        if unit not in units or not num:
            raise DockerfileError(f"{where}: invalid duration {text!r}")
        total += int(float(num) * units[unit])
        num = ""
        i += len(unit)
    if num:
        raise DockerfileError(f"{where}: invalid duration {text!r}: missing unit")
    return total
