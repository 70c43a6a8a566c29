"""`portique serve`: the Docker Engine API over the engine (a face, as cli/).

The server (server.py) listens on a unix socket (or loopback TCP, or TCP with
TLS client certificates), and forks one worker process per connection
(forking.py): the parent stays single-threaded and only accepts and reaps,
the worker speaks HTTP/1.1 with h11 on its connection (http.py), calls the
engine and may fork containers (the runtime refuses to fork while other
threads run, and a worker never starts one).

A request goes: http.Connection -> router.dispatch (strips `/v1.NN`, checks
the version, finds the route) -> the route's handler -> a Response, or a
stream the handler writes itself (chunked JSON, a hijacked raw stream).
Every exception reaches errors.py, which turns it into Docker's
`{"message": "..."}` with the API's status code.

How a route module plugs in
---------------------------

A module `portique.api.NAME` defines `ROUTES`, a list of `Route`s, and is
named once in `router.MODULES`:

    from portique.api.types import Request, Response, Route, json_response

    def list_volumes(req: Request) -> Response:
        filters = req.filters()                  # the `filters` query, checked
        return json_response(volumes.list_volumes(req.eng, filters=filters))

    def remove(req: Request) -> Response:
        volumes.remove_volume(req.eng, req.params["name"], force=req.flag("force"))
        return Response(204)

    ROUTES = [
        Route("GET", "/volumes", list_volumes),
        Route("DELETE", "/volumes/{name}", remove),
    ]

Paths are written without the version prefix; `{name}` matches one path
segment, `{name:path}` the rest of the path (image names with slashes).
A handler gets a `Request` (types.py): `req.eng` (the Engine), `req.params`
(path parameters), `req.query` / `req.arg(name)` / `req.flag(name)` /
`req.int_arg(name)`, `req.filters()`, `req.json()` (the body as a JSON
object, bounded in size), `req.body_stream()` (a file-like reader of a large
body: tar contexts, archives), `req.headers`, `req.api_version`. It returns a
`Response` (status, body, headers), or streams:

    out = req.stream(200, "application/json")    # chunked
    out.write(json_line(progress))               # each write is sent at once
    return None                                  # the stream ends after the handler

or hijacks (attach, exec start): `raw = req.hijack("application/vnd.docker.raw-stream")`
gives the connection's socket after the 101 (or 200) answer.

Raise the engine's errors (errors.py of portique): `InvalidArgument` -> 400,
`NoSuchObject` -> 404 "No such container: x", `Conflict` -> 409,
`Unsupported` -> 501, any other `PortiqueError` -> 500, with the message the
CLI prints. `api.types.NotModified` is a 304 (start of a running container).
"""
