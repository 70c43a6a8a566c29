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

The image config and history are assembled by build/metadata.py, the cache
(a step key -> the complete result of the step, so that a fully cached
rebuild runs nothing and yields the same image ID) is build/cache.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from portique import db, faults, journal
from portique.build import metadata
from portique.build.cache import BuildCache, step_key
from portique.build.context import BuildContext
from portique.build.dockerfile import Dockerfile, Instruction, expand, parse
from portique.build.metadata import DEFAULT_PATH, StageState
from portique.build.stages import Plan, Stage, parse_arg, plan, stage_names, stage_ref
from portique.errors import InvalidArgument, PortiqueError
from portique.words import split_words

if TYPE_CHECKING:
    from portique.image.images import ImageRecord, Images
    from portique.image.registry.client import RegistryClient

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
    dockerfile_text: str | None = None  # `-f -`: the Dockerfile itself, read from stdin
    add_hosts: list[tuple[str, str]] = field(default_factory=list)  # (name, IP): /etc/hosts
    cache_from: list[str] = field(default_factory=list)  # images whose steps may be reused
    shm_size: int = 0  # bytes of RUN steps' /dev/shm (0: the default 64 MiB)
    rlimits: list[dict[str, Any]] = field(default_factory=list)  # OCI process.rlimits
    memory: int = 0  # RUN steps' memory limit in bytes (0: none)
    memory_swap: int = 0  # memory + swap (0: twice the memory, -1: unlimited)
    # Pulls of base images: None is a client with Docker's config.json (the
    # CLI's); the API passes one with the request's credentials only.
    registry: RegistryClient | None = None


class Builder:
    """`runtime_root`: the runtime library's state directory for RUN steps
    (the engine's <runroot>/runtime)."""

    def __init__(self, images: Images, runtime_root: Path, out: TextIO | None = None) -> None:
        self.images = images
        self.root = images.root
        self.runtime_root = runtime_root
        self.out = out if out is not None else sys.stdout
        self.conn = db.connect(self.root)
        self.cache = BuildCache(self.conn, images.store)
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
        self._cache_from = None
        self._skip: frozenset[str] = frozenset()
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
        self.cache.mark_result(record.id)
        self.say(f"Successfully built {record.id.removeprefix('sha256:')[:12]}")
        from portique.oci.reference import parse_reference

        for tag in opts.tags:
            self.say(f"Successfully tagged {parse_reference(tag).familiar()}")
        return record

    def _read_dockerfile(self) -> Dockerfile:
        if self.opts.dockerfile_text is not None:
            return parse(self.opts.dockerfile_text, filename="Dockerfile")
        path, root = self.opts.dockerfile, self.ctx.root
        if path is None:
            path = root / "Dockerfile"
            if not path.exists() and (root / "Containerfile").exists():
                path = root / "Containerfile"
        elif not path.is_absolute():
            path = root / path
        from portique.build.context import read_in_dir
        from portique.build.dockerfile import MAX_DOCKERFILE

        try:
            # Symlinks resolved inside the Dockerfile's own directory, as BuildKit.
            text = read_in_dir(path, MAX_DOCKERFILE)
        except FileNotFoundError:
            raise InvalidArgument(f"cannot read Dockerfile {path}: no such file") from None
        except OSError as exc:
            raise InvalidArgument(f"cannot read Dockerfile {path}: {exc.strerror}") from None
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
            return StageState(
                copy.deepcopy(base.config), list(base.layers), base.key, {}, image=base.image
            )
        if stage.base == "scratch":
            return StageState(metadata.scratch_config(), [], step_key("scratch"), {})
        image = self._base_image(stage.base, pull=self.opts.pull, platform=self.opts.platform)
        config = metadata.base_config(json.loads(self.images.store.read_bytes(image.id)))
        manifest = json.loads(self.images.store.read_bytes(image.manifest_digest))
        key = step_key("image", image.id)
        return StageState(config, list(manifest["layers"]), key, {}, image=image.id)

    def _base_image(self, name: str, *, pull: bool, platform: str | None) -> ImageRecord:
        from portique.errors import NotFound

        if not pull:
            try:
                return self.images.resolve(name)
            except NotFound:
                pass
        from portique.image.pull import pull as pull_image

        self.say(f"Pulling {name}")
        return pull_image(self.images, name, platform=platform, client=self.opts.registry)

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
            state.key = step_key(state.key, "ARG", sorted(state.args.items()))
            return state
        scope = state.scope()
        if instr.cmd in ("RUN", "COPY", "ADD"):
            extra: object = None
            sources: list[Any] = []
            if instr.cmd != "RUN":
                sources, extra = self._copy_sources(instr, state, stage, scope)
            text = instr.original if instr.cmd == "RUN" else expand(instr.original, scope)
            heredocs = [h.content for h in instr.heredocs]
            key = step_key(
                state.key, text, heredocs, sorted(state.args.items()), extra, self.opts.network
            )
            cached = None if self.opts.no_cache else self.cache.get(key)
            if cached is not None:
                self.say(" ---> Using cache")
                state.config, state.layers = cached
                state.key = key
                self._step_image(state, None)
                return state
            before = len(state.layers)
            if instr.cmd == "RUN" and self._from_cache_images(instr, state):
                self.say(" ---> Using cache")
            elif instr.cmd == "RUN":
                self._run(instr, state, where)
            else:
                self._copy(instr, state, sources, where)
            state.key = key
            self._step_image(state, before)
            return state
        metadata.apply(instr, state, scope, where, self.df.escape)
        state.key = step_key(state.key, instr.cmd, json.dumps(state.cfg, sort_keys=True))
        metadata.add_history(state, instr, empty=True)
        # Metadata steps are cached too so that the config (and its created
        # time) of a fully cached build is identical, hence the same image ID.
        cached = None if self.opts.no_cache else self.cache.get(state.key)
        if cached is not None:
            state.config, state.layers = cached
            self._step_image(state, None)
        else:
            self._step_image(state, len(state.layers))
        return state

    def _from_cache_images(self, instr: Instruction, state: StageState) -> bool:
        """`--cache-from`: take a RUN step's result from an image whose history
        is this stage's so far followed by the same RUN, over the same layers
        (Docker's classic builder's rule). Not with build args in scope (the
        history does not record their values), and never for COPY/ADD (it does
        not record their sources): those run, and their deterministic layers
        let the steps after them match again."""
        if not self.opts.cache_from or state.args:
            return False
        from portique.oci.image import parse_descriptor

        mine = [_history_key(h) for h in state.config.get("history") or []]
        diff_ids = list((state.config.get("rootfs") or {}).get("diff_ids") or [])
        by = metadata.created_by(instr)
        for config, layers in self._cache_images():
            theirs = [h for h in config.get("history") or [] if isinstance(h, dict)]
            their_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            n = len(mine)
            if len(theirs) <= n or [_history_key(h) for h in theirs[:n]] != mine:
                continue
            if their_ids[: len(diff_ids)] != diff_ids or theirs[n].get("created_by") != by:
                continue
            if theirs[n].get("empty_layer"):
                metadata.add_history(state, instr, empty=True)
                return True
            i = len(diff_ids)
            if i >= len(their_ids) or i >= len(layers):
                continue
            desc = parse_descriptor(layers[i], f"layers[{i}]")
            if not self.images.store.has(desc.digest):
                continue
            metadata.add_layer(state, desc, their_ids[i], instr)
            return True
        return False

    def _cache_images(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """The --cache-from images' configs and layer descriptors (local images;
        a name not found is said once and left out)."""
        if self._cache_from is not None:
            return self._cache_from
        from portique.errors import NotFound

        cached = []
        for name in self.opts.cache_from:
            try:
                image = self.images.resolve(name)
            except (NotFound, InvalidArgument):
                self.say(f"[Warning] --cache-from image {name} is not here: not used")
                continue
            manifest = json.loads(self.images.store.read_bytes(image.manifest_digest))
            cached.append((image.config, list(manifest.get("layers") or [])))
        self._cache_from = cached
        return cached

    def _step_image(self, state: StageState, before: int | None) -> None:
        """Register the step's image (untagged, the child of the previous
        step's), as Docker's classic builder does, and print its ID; `before`:
        the layer count before a step that ran (its result then goes into the
        cache), None for a cached step."""
        record = self._register(state, [], parent=state.image or None)
        state.image = record.id
        if before is not None:
            diff_ids = state.config.get("rootfs", {}).get("diff_ids") or []
            layer = diff_ids[-1] if len(state.layers) > before and diff_ids else ""
            self.cache.put(state.key, state.config, state.layers, image_id=record.id, layer=layer)
        else:
            self.cache.set_image(state.key, record.id)
        self.say(f" ---> {record.short_id}")

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
        from portique.build.step import mount_points, run_step, step_spec
        from portique.fileio import atomic_write_json
        from portique.runtime.confinement import default_confinement, host_capabilities

        # Confined as a default `portique run` container is (build/step.py).
        bundle = rootfs.parent / "bundle"
        bundle.mkdir(exist_ok=True)
        spec = step_spec(
            rootfs=rootfs,
            argv=argv,
            env=env,
            cwd=cwd,
            user=_resolve_user(user, rootfs),
            network=self.opts.network,
            confinement=default_confinement(host_capabilities()),
            hosts=self._hosts_file(bundle),
            shm_size=self.opts.shm_size,
            rlimits=self.opts.rlimits,
            memory=self.opts.memory,
            memory_swap=self.opts.memory_swap,
        )
        atomic_write_json(bundle / "config.json", spec)
        self._skip = mount_points(spec)
        cid = "build-" + os.urandom(16).hex()
        out = None if self.quiet else self.out
        return run_step(self.runtime_root, cid, bundle, out)

    def _hosts_file(self, bundle: Path) -> Path | None:
        """RUN steps' /etc/hosts with `--add-host`'s entries (None without any)."""
        if not self.opts.add_hosts:
            return None
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        if self.opts.network == "host":
            with contextlib.suppress(OSError):
                lines = Path("/etc/hosts").read_text().splitlines()
        for name, ip in self.opts.add_hosts:
            lines.append(f"{ip}\t{name}")
        path = bundle / "hosts"
        path.write_text("\n".join(lines) + "\n")
        return path

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
        from portique.image.snapshots import mount_overlay, remove_tree, unmount_overlay
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
            # journal keeps the step for the recovery. A RUN step's tree may
            # nest deeper than shutil.rmtree's recursion can go.
            with contextlib.suppress(OSError):
                remove_tree(work_root)
            if self._op is not None and not work_root.exists():
                self._op.drop(*step)

    def _commit_layer(self, state: StageState, upper: Path, instr: Instruction) -> None:
        from portique.image.snapshots import has_changes

        # A RUN step's mount points are the runtime's (build/step.py).
        skip, self._skip = self._skip, frozenset()
        if not has_changes(upper, skip):
            # A step that changed nothing adds no layer, as Docker's builder:
            # its history entry says so (empty_layer).
            metadata.add_history(state, instr, empty=True)
            return
        desc, diff_id = self.images.layer_from_dir(upper, skip)
        if self._op is not None:
            self._op.add({"type": "blob", "digest": desc.digest})
        faults.point("build.layer-stored")
        metadata.add_layer(state, desc, diff_id, instr)

    def _commit(self, state: StageState, tags: list[str]) -> ImageRecord:
        faults.point("build.before-register")
        return self._register(state, tags, parent=state.image or None)

    def _register(self, state: StageState, tags: list[str], parent: str | None) -> ImageRecord:
        config_bytes, manifest_bytes = metadata.documents(state)
        self.images.store.write_bytes(config_bytes)
        manifest_digest = self.images.store.write_bytes(manifest_bytes)
        return self.images.register(
            manifest_bytes, manifest_digest, config_bytes, tags=tags, parent=parent
        )

    # Set for the length of one build(): the read-only mounts of other stages
    # that COPY --from reads (undone when the build ends), and its inputs.
    _stack: ExitStack
    opts: BuildOptions
    _cache_from: list[tuple[dict[str, Any], list[dict[str, Any]]]] | None
    ctx: BuildContext
    df: Dockerfile
    plan: Plan
    states: dict[int, StageState]


def _history_key(entry: object) -> tuple[str, bool]:
    """What two histories must share, step by step, for --cache-from."""
    if not isinstance(entry, dict):
        return ("", False)
    return (str(entry.get("created_by") or ""), bool(entry.get("empty_layer")))


def _resolve_user(user: str, rootfs: Path) -> dict[str, Any]:
    if not user:
        return {"uid": 0, "gid": 0}
    from portique.build.copy import resolve_owner

    owner = resolve_owner(user, rootfs)
    return {"uid": owner.uid, "gid": owner.gid}
