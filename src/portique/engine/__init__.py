"""The engine: containers from images, their monitor, logs, volumes, networks, exec.

Nothing is imported here: the monitor imports `portique.engine.monitor` in a
bare interpreter and must not pay for the rest.

Each face builds one `Engine(root, runroot)` (engine/engine.py) and calls the
same functions with the same arguments, in Docker's API shapes (Config,
HostConfig, NetworkingConfig; filters as Docker's `filters` map; the API's
list and inspect JSON):

    containers.create(eng, config, host_config, networking, *, name, pull)
        -> db.ContainerRow                      # POST /containers/create
    containers.start / stop / kill / pause / unpause / restart / wait / rename /
        remove(eng, ref, ...)                   # POST /containers/{id}/...
    containers.list_containers(eng, all=, limit=, size=, filters=) -> [summary]
    containers.inspect(eng, ref, size=) -> dict # GET /containers/{id}/json
    logs.container_logs(eng, ref, follow=, tail=, since_ns=, until_ns=)
    exec.run_exec(eng, ref, ExecRequest(...)) -> exit code
    stats.top(eng, ref, ps_args); stats.sample(eng, row)
    images.list_images / inspect / history / tag / remove / prune / pull /
        load / build(eng, ...)
    volumes.create / list_volumes / inspect / remove_volume / prune_volumes
    networks.create / list_networks / inspect / remove / prune / connect /
        disconnect(eng, ...)
    system.info / disk_usage / prune(eng, ...)
    attach.attach(eng.paths(id), AttachOptions(...)) -> exit code | DETACHED
    copy.copy_in / copy_out / export            # fd-based, symlinks never followed
    events.read(eng, since_ns, until_ns, filters, stop=) -> Iterator[Event]
        # GET /events: Event.to_api() is each message of the stream

A missing object the user named is `errors.NoSuchObject(kind, ref)`; a
status that forbids the operation is the refusal of the state machine
(state.py), in Docker's words. The operations that write state recover what
crashed operations left first (`Engine.recover`, recovery.py).

Modules: state (the container state machine), present (Docker's words and
JSON for a container), filters, options (flag values), config (image
defaults, OCI spec), userdb (-u against the image's passwd/group), bundle
(mount + config.json), stdio, network (none/host/network layer at start),
lifecycle (start protocol, exit handling), monitor + stream + logfile +
dblite (the long-lived monitor and its protocol), client (talking to a
monitor), db (schema and queries), paths, names, stats, eventlog + events
(the event record and Docker's events read from it), health (healthchecks:
flags, merge, the probe the monitor starts).
"""

__all__: list[str] = []
