"""`POST /build`: the classic builder (what /_ping's `Builder-Version: 1`
offers), over engine/images.py's `build_context` and `build`, the functions
`portique build -` calls.

The body is the context as a tar (plain or compressed; or a Dockerfile
alone), unpacked with the hostile-layer rules; the query maps onto
BuildOptions as engine/images.py's `build` documents. The answer is Docker's
JSON message stream: the builder's output as `{"stream": ...}`, the image as
`{"aux": {"ID": ...}}`, a failure as the last message's `errorDetail`.
"""

from __future__ import annotations

import io
import json
from typing import Any, TextIO, cast

from portique.api.jsonstream import JSONMessages
from portique.api.types import Request, Response, Route
from portique.errors import InvalidArgument, Unsupported

__all__ = ["ROUTES"]

# Query parameters of POST /build that a classic build may carry and that
# change nothing here (resources of the intermediate containers, which
# portique does not keep, and BuildKit's session plumbing).
IGNORED = ("rm", "forcerm", "cpushares", "cpusetcpus", "cpuperiod", "cpuquota", "session")


def _json_arg(req: Request, name: str, kind: type) -> Any:
    text = req.arg(name)
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: not JSON") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidArgument(f"invalid {name}: expected a JSON {kind.__name__}")
    return value


def _str_map(req: Request, name: str) -> dict[str, str]:
    raw = _json_arg(req, name, dict)
    out = {}
    for key, value in raw.items():
        if value is None:
            continue  # a build-arg without a value: Docker leaves it unset
        if not isinstance(value, str):
            raise InvalidArgument(f"invalid {name}: {key} must be a string")
        out[key] = value
    return out


def _dockerfile(name: str) -> str:
    """The Dockerfile's path inside the context, refusing one that leaves it."""
    if not name:
        return ""
    if name.startswith("/") or ".." in name.split("/") or "\0" in name:
        raise InvalidArgument(
            f"invalid dockerfile {name!r}: it must be a path inside the build context"
        )
    return name


def _options(req: Request) -> dict[str, Any]:
    """BuildOptions' fields from the query, all but the context, checked."""
    from portique.engine import network
    from portique.engine import options as opt
    from portique.oci.reference import parse_reference

    tags = [str(parse_reference(t)) for t in req.query.get("t", []) if t]
    mode = req.arg("networkmode") or "default"
    if mode not in ("default", "none", "host"):
        raise InvalidArgument(f"invalid networkmode {mode!r}: use none or host")
    hosts = [network.parse_extra_host(h) for h in _extra_hosts(req.arg("extrahosts"))]
    rlimits = []
    for i, u in enumerate(_json_arg(req, "ulimits", list)):
        if not isinstance(u, dict) or not isinstance(u.get("Name"), str):
            raise InvalidArgument(f"invalid ulimits[{i}]: expected {{Name, Soft, Hard}}")
        spec = opt.parse_ulimit(f"{u['Name']}={u.get('Soft', 0)}:{u.get('Hard', 0)}")
        rlimits.append({"type": opt.ULIMIT_NAMES[spec.name], "soft": spec.soft, "hard": spec.hard})
    memory = req.int_arg("memory", 0)
    memswap = req.int_arg("memswap", 0)
    shm = req.int_arg("shmsize", 0)
    if memory < 0 or shm < 0 or memswap < -1:
        raise InvalidArgument("memory, memswap and shmsize must not be negative")
    cache_from = _json_arg(req, "cachefrom", list)
    if not all(isinstance(c, str) for c in cache_from):
        raise InvalidArgument("invalid cachefrom: expected a list of image names")
    return dict(
        tags=tags,
        target=req.arg("target") or None,
        build_args=_str_map(req, "buildargs"),
        no_cache=req.flag("nocache"),
        pull=req.flag("pull"),
        labels=_str_map(req, "labels"),
        quiet=req.flag("q"),
        network="none" if mode == "default" else mode,
        platform=req.arg("platform") or None,
        add_hosts=hosts,
        cache_from=cache_from,
        shm_size=shm,
        rlimits=rlimits,
        memory=memory,
        memory_swap=memswap,
    )


def _extra_hosts(text: str) -> list[str]:
    return [h for h in text.replace(",", " ").split() if h]


class _Output(io.TextIOBase):
    """The builder's text output, each write one `{"stream": ...}` message."""

    def __init__(self, out: JSONMessages) -> None:
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.out.text(s)
        return len(s)


def build(req: Request) -> Response | None:
    from portique.engine import images

    if req.arg("version") == "2":
        raise InvalidArgument("BuildKit is not supported: use the classic builder (version=1)")
    if req.arg("remote"):
        raise Unsupported("a remote build context is not supported: send the context as a tar")
    if req.flag("squash"):
        raise InvalidArgument("squash is not supported")
    if req.arg("outputs") and req.arg("outputs") not in ("[]", "null"):
        raise InvalidArgument("outputs are not supported by the classic builder")
    from portique.api.images import insecure_registries, registry_config
    from portique.build.builder import BuildOptions
    from portique.engine import registry

    # Query mistakes are refused before the body is read.
    fields = _options(req)
    fields["registry"] = registry.client(
        insecure=insecure_registries(), credentials=registry_config(req)
    )
    name = _dockerfile(req.arg("dockerfile"))
    from portique.api.hangup import cancel_on_hangup

    with JSONMessages(req) as out, cancel_on_hangup(req.conn.sock):
        with images.build_context(req.eng, req.body_stream()) as context:
            opts = BuildOptions(
                context=context, dockerfile=context / name if name else None, **fields
            )
            # The builder writes and flushes text: all a TextIO it uses.
            record = images.build(req.eng, opts, cast("TextIO", _Output(out)))
        out.send({"aux": {"ID": record.id}})
        if opts.quiet:
            out.text(record.id + "\n")
    return out.response()


def prune(req: Request) -> Response:
    """`POST /build/prune`: the build cache (engine/buildcache.py, `builder prune`)."""
    from portique.api.types import json_response
    from portique.engine import buildcache

    filters = req.filters()
    done = buildcache.prune(req.eng, all=req.flag("all"), filters=filters)
    return json_response({"CachesDeleted": done[0] or None, "SpaceReclaimed": done[1]})


ROUTES = [
    Route("POST", "/build", build),
    Route("POST", "/build/prune", prune),
]
