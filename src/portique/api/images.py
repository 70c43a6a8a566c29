"""`/images/...`: pull (and import), list, inspect, history, tag, remove,
push, prune, get and load tarballs, search, over engine/images.py and
engine/registry.py (the functions `portique pull|push|images|...` call).

Registry credentials come from the request's `X-Registry-Auth` (base64url
JSON: username, password, serveraddress; or `auth`, base64 of user:password),
never from the server's own files: a client that sends none is anonymous,
as with dockerd. Image names with slashes are path parameters of their own
(`/images/reg:5000/a/b:v1/json`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import TYPE_CHECKING, Any

from portique.api.jsonstream import JSONMessages
from portique.api.types import Request, Response, Route, StreamFile, json_response
from portique.errors import InvalidArgument, Unsupported

if TYPE_CHECKING:
    from portique.image.registry.auth import CredentialSource
    from portique.image.registry.client import RegistryClient

MAX_AUTH_HEADER = 16 << 10

__all__ = [
    "ROUTES",
    "auth_config",
    "insecure_registries",
    "registry_auth",
    "registry_client",
    "registry_config",
]


# ---- credentials and the registry client -------------------------------------------------


def _b64(text: str, what: str) -> bytes:
    raw = text.strip().encode("ascii", "replace")
    raw = raw.replace(b"-", b"+").replace(b"_", b"/")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{what}: invalid base64") from None


def registry_auth(header: str) -> dict[str, str]:
    """The AuthConfig an `X-Registry-Auth` header carries ({} for none)."""
    if not header.strip():
        return {}
    if len(header) > MAX_AUTH_HEADER:
        raise InvalidArgument("X-Registry-Auth: header too large")
    try:
        doc = json.loads(_b64(header, "X-Registry-Auth"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("X-Registry-Auth: not base64url-encoded JSON") from None
    return auth_config(doc, "X-Registry-Auth")


def auth_config(doc: Any, where: str) -> dict[str, str]:
    """Docker's AuthConfig (keys in any case), checked: {key: string}, with
    `auth` (base64 of user:password) split into username and password."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{where}: expected a JSON object")
    out: dict[str, str] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidArgument(f"{where}: {key} must be a string")
        out[key.lower()] = value
    if out.get("auth") and not out.get("username"):
        user, sep, password = (
            _b64(out["auth"], f"{where}: auth").decode("utf-8", "replace").partition(":")
        )
        if not sep:
            raise InvalidArgument(f"{where}: auth is not base64 of user:password")
        out["username"], out["password"] = user, password
    return out


def _credentials(req: Request, host: str) -> CredentialSource:
    from portique.engine import registry

    auth = registry_auth(req.headers.get("x-registry-auth", ""))
    if auth.get("username") and auth.get("password"):
        return registry.given(host, auth["username"], auth["password"])
    return _Anonymous()


def registry_config(req: Request) -> CredentialSource:
    """A build's `X-Registry-Config`: base64url JSON {registry: AuthConfig}; the
    credentials for the pulls of its base images (none: anonymous)."""
    from portique.engine import registry

    header = req.headers.get("x-registry-config", "")
    if not header.strip():
        return _Anonymous()
    if len(header) > 4 * MAX_AUTH_HEADER:
        raise InvalidArgument("X-Registry-Config: header too large")
    try:
        doc = json.loads(_b64(header, "X-Registry-Config"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("X-Registry-Config: not base64url-encoded JSON") from None
    if doc is None:
        return _Anonymous()
    if not isinstance(doc, dict):
        raise InvalidArgument("X-Registry-Config: expected a JSON object")
    auths = {}
    for server, config in doc.items():
        auth = auth_config(config, f"X-Registry-Config: {server}")
        if auth.get("username") and auth.get("password"):
            auths[auth.get("serveraddress") or server] = (auth["username"], auth["password"])
    return registry.given_many(auths)


class _Anonymous:
    def get(self, host: str) -> tuple[str, str] | None:
        return None


def insecure_registries() -> set[str]:
    """The server's $PORTIQUE_INSECURE_REGISTRIES (a,b,...), as the CLI's."""
    return {
        h.strip()
        for h in os.environ.get("PORTIQUE_INSECURE_REGISTRIES", "").split(",")
        if h.strip()
    }


def registry_client(req: Request, reference: str) -> RegistryClient:
    """A registry client with the request's credentials for `reference`'s registry."""
    from portique.engine import registry
    from portique.oci.reference import parse_reference

    host = parse_reference(reference, default_tag=None).domain
    return registry.client(insecure=insecure_registries(), credentials=_credentials(req, host))


# ---- pull (and import) ----------------------------------------------------------------------


def _pull_name(image: str, tag: str) -> tuple[str, bool]:
    """(reference, all tags?) from `fromImage` and `tag`, as dockerd joins them:
    a tag that is a digest joins with @; no tag anywhere pulls every tag."""
    from portique.oci.reference import parse_reference

    if not image:
        raise InvalidArgument("fromImage or fromSrc is required")
    ref = parse_reference(image, default_tag=None)
    if tag:
        if ref.tag is not None or ref.digest is not None:
            raise InvalidArgument(f"invalid reference: {image} already names a tag or digest")
        joined = f"{image}@{tag}" if ":" in tag else f"{image}:{tag}"
        parse_reference(joined)  # a bad tag is a 400 naming it
        return joined, False
    return image, ref.tag is None and ref.digest is None


def create(req: Request) -> Response | None:
    """`POST /images/create`: pull `fromImage` (+`tag`), or import `fromSrc=-`."""
    if req.has("fromSrc"):
        return _import(req)
    from portique.engine import images, registry
    from portique.image.pull import ProgressEvent

    name, all_tags = _pull_name(req.arg("fromImage"), req.arg("tag"))
    platform = req.arg("platform") or None
    client = registry_client(req, name)
    with JSONMessages(req) as out:
        results = registry.pull(
            req.eng,
            name,
            all_tags=all_tags,
            platform=platform,
            progress=out.progress,
            client=client,
        )
        last = results[-1]
        shown = images.familiar(name) if all_tags else last.reference.familiar()
        if not last.downloaded and not all_tags:
            out.progress(ProgressEvent("", f"Digest: {last.digest}"))
        fresh = any(r.downloaded for r in results)
        status = "Downloaded newer image" if fresh else "Image is up to date"
        out.status(f"Status: {status} for {shown}")
    return out.response()


def _import(req: Request) -> Response | None:
    from portique.engine import images

    source = req.arg("fromSrc")
    if source != "-":
        raise InvalidArgument(
            f"cannot import from {source!r}: portique imports from the request body only"
            " (fromSrc=-)"
        )
    repo, tag = req.arg("repo"), req.arg("tag")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    if reference is not None:
        from portique.oci.reference import parse_reference

        parse_reference(reference)
    with JSONMessages(req) as out:
        record = images.import_image(
            req.eng,
            req.body_stream(),
            reference,
            changes=req.query.get("changes", []),
            message=req.arg("message"),
        )
        out.status(record.id)
    return out.response()


# ---- list, inspect, history -------------------------------------------------------------------


def list_images(req: Request) -> Response:
    from portique.engine import images

    filters = req.filters()
    if req.arg("filter") and "reference" not in filters:
        filters["reference"] = [req.arg("filter")]  # API < 1.28's filter=NAME
    out = images.list_images(req.eng, all=req.flag("all"), filters=filters)
    if not req.flag("shared-size"):
        for row in out:
            row["SharedSize"] = -1
    return json_response(out)


def inspect(req: Request) -> Response:
    from portique.engine import images

    return json_response(images.inspect(req.eng, req.params["name"]))


def history(req: Request) -> Response:
    from portique.engine import images

    name = req.params["name"]
    record = images.resolve(req.eng, name)
    entries = images.history(req.eng, name)
    tags = [images.familiar(t) for t in record.repo_tags]
    return json_response(
        [
            {
                "Id": e.id or "<missing>",
                "Created": int(images.created_timestamp(e.created)),
                "CreatedBy": e.created_by,
                "Tags": tags if i == 0 and tags else None,
                "Size": e.size,
                "Comment": e.comment,
            }
            for i, e in enumerate(entries)
        ]
    )


# ---- tag, remove, prune -------------------------------------------------------------------------


def tag(req: Request) -> Response:
    from portique.engine import images
    from portique.oci.reference import parse_reference

    repo, tag_ = req.arg("repo"), req.arg("tag")
    if not repo:
        raise InvalidArgument("repo is required")
    target = f"{repo}:{tag_}" if tag_ else repo
    parse_reference(target)  # a bad name is a 400 before anything changes
    images.tag(req.eng, req.params["name"], target)
    return Response(201, b"", "text/plain")


def remove(req: Request) -> Response:
    from portique.engine import images

    done = images.remove(req.eng, req.params["name"], force=req.flag("force"))
    return json_response([{what: name} for what, name in done])


def prune(req: Request) -> Response:
    from portique.engine import filters as flt
    from portique.engine import images

    filters = req.filters()
    dangling = filters.pop("dangling", [])
    all_ = any(not flt.flag("dangling", v) for v in dangling)
    done, reclaimed = images.prune(req.eng, all=all_, filters=filters)
    return json_response(
        {
            "ImagesDeleted": [{what.capitalize(): name} for what, name in done] or None,
            "SpaceReclaimed": reclaimed,
        }
    )


# ---- push ------------------------------------------------------------------------------------------


def push(req: Request) -> Response | None:
    """`POST /images/{name}/push?tag=T`: no tag pushes every local tag of the
    repository (dockerd's rule; the docker CLI sends `latest` itself)."""
    from portique.engine import registry
    from portique.oci.reference import parse_reference

    name, tag_ = req.params["name"], req.arg("tag")
    as_typed = parse_reference(name, default_tag=None)
    if tag_:
        if as_typed.tag is not None or as_typed.digest is not None:
            raise InvalidArgument(f"invalid reference: {name} already names a tag or digest")
        name = f"{name}:{tag_}"
    all_tags = as_typed.tag is None and not tag_
    refs = registry.push_refs(req.eng, name, all_tags=all_tags)  # 404 before any message
    client = registry_client(req, name)
    with JSONMessages(req) as out:
        out.status(f"The push refers to repository [{as_typed.repository}]")
        for ref in refs:
            (result,) = registry.push(req.eng, str(ref), progress=out.progress, client=client)
            out.status(f"{ref.tag}: digest: {result.digest} size: {result.size}")
            out.send(
                {
                    "progressDetail": {},
                    "aux": {"Tag": ref.tag, "Digest": result.digest, "Size": result.size},
                }
            )
    return out.response()


# ---- get and load ---------------------------------------------------------------------------------


def _save(req: Request, names: list[str]) -> Response | None:
    from portique.engine import images

    for name in names:
        images.resolve(req.eng, name)  # a 404 before the tar begins
    tar = StreamFile(req.stream(200, "application/x-tar"))
    images.save(req.eng, names, tar)  # type: ignore[arg-type]
    tar.flush()
    return None


def get_one(req: Request) -> Response | None:
    return _save(req, [req.params["name"]])


def get_many(req: Request) -> Response | None:
    names = req.query.get("names", [])
    if not names:
        raise InvalidArgument("names is required: the images to save")
    return _save(req, names)


def load(req: Request) -> Response | None:
    """`POST /images/load`: Docker's "Loaded image" lines as `{"stream": ...}`
    messages (the docker CLI prints them; `quiet` changes nothing else)."""
    from portique.engine import images

    with JSONMessages(req) as out:
        loaded = images.load(req.eng, req.body_stream())
        for image in loaded:
            lines = [f"Loaded image: {t}" for t in image.tags] or [f"Loaded image ID: {image.id}"]
            for line in lines:
                out.text(line + "\n")
    return out.response()


def commit(req: Request) -> Response:
    """`POST /commit?container=C&repo=R&tag=T&comment=&author=&pause=&changes=`,
    the body a Config whose fields override the container's (engine/commit.py,
    what `portique commit` calls)."""
    from portique.engine import commit as ecommit

    container = req.arg("container")
    if not container:
        raise InvalidArgument("container is required")
    raw = req.body().strip()
    config = None
    if raw and raw != b"null":
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument("invalid JSON in request body: expected a Config") from None
        if not isinstance(config, dict):
            raise InvalidArgument("invalid JSON in request body: expected a Config object")
    if req.arg("repo"):
        from portique.oci.reference import parse_reference

        tag_ = req.arg("tag")
        parse_reference(f"{req.arg('repo')}:{tag_}" if tag_ else req.arg("repo"))
    image_id = ecommit.commit(
        req.eng,
        container,
        repo=req.arg("repo"),
        tag=req.arg("tag"),
        comment=req.arg("comment"),
        author=req.arg("author"),
        pause=req.flag("pause", True),
        changes=req.query.get("changes", []),
        config=config,
    )
    return json_response({"Id": image_id}, 201)


def search(req: Request) -> Response:
    term = req.arg("term")
    raise Unsupported(
        f"cannot search for {term!r}: no registry index is configured"
        " (portique pulls by name from registries, which offer no search)"
    )


ROUTES = [
    Route("POST", "/images/create", create),
    Route("POST", "/commit", commit),
    Route("GET", "/images/json", list_images),
    Route("GET", "/images/search", search),
    Route("GET", "/images/get", get_many),
    Route("POST", "/images/load", load),
    Route("POST", "/images/prune", prune),
    Route("GET", "/images/{name:path}/json", inspect),
    Route("GET", "/images/{name:path}/history", history),
    Route("GET", "/images/{name:path}/get", get_one),
    Route("POST", "/images/{name:path}/tag", tag),
    Route("POST", "/images/{name:path}/push", push),
    Route("DELETE", "/images/{name:path}", remove),
]
