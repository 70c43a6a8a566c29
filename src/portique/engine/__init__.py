"""The engine: containers from images, their monitor, logs, volumes and exec.

Nothing is imported here: the monitor imports `portique.engine.monitor` in a
bare interpreter and must not pay for the rest.

Entry points the faces (CLI, API server) call, all taking a connection from
`containers.open_db()` and Docker's API shapes:

    containers.create(conn, image_ref, config, host_config, *, name, mounts, pull)
        -> db.ContainerRow                      # Config/HostConfig as in POST /containers/create
    containers.start(conn, ref, *, hold=False)  # spawns the monitor; hold: wait for an attach
    containers.stop(conn, ref, timeout=None, sig=None) / kill(conn, ref, sig)
    containers.pause / unpause / restart / wait / rename / remove(conn, ref, force, volumes)
    containers.get(conn, ref) / list_all(conn)  # refreshed from the monitors' liveness
    present.inspect(row) / present.ps_row(row)  # Docker's JSON and ps columns
    attach.attach(ContainerPaths.of(id), AttachOptions(...)) -> exit code | DETACHED
    exec.run_exec(row, ExecRequest(...)) -> exit code
    logs.read_records / tail_records / follow   # json-file reader
    volumes.create_volume / remove_volume / prune_volumes
    copy.copy_in / copy_out / export            # fd-based, symlinks never followed

Modules: options (flag values), config (image defaults, OCI spec), userdb
(-u against the image's passwd/group), bundle (mount + config.json), stdio,
network (none/host/network layer), lifecycle (start protocol, exit handling),
monitor + stream + logfile + dblite (the long-lived monitor and its protocol),
client (talking to a monitor), db (schema and queries), paths, names, stats.
"""

__all__: list[str] = []
