"""Registry access for every face: the client, login, pull and push of whole
repositories, in Docker's shapes.

    client = registry.client(insecure={"reg:5000"}, tls_verify=True, credentials=None)
    registry.login(server, username, password, insecure=..., tls_verify=...)  # POST /auth
    registry.pull(eng, "busybox", all_tags=False, platform=None, progress=cb, client=client)
    registry.push(eng, "reg:5000/busybox", all_tags=False, progress=cb, client=client)

`credentials` is any source with `get(host) -> (user, secret) | None`: the
CLI's is Docker's config.json (the default), the API's the request's
`X-Registry-Auth` (`given`). The faces read their own settings (the CLI
`$PORTIQUE_INSECURE_REGISTRIES`, the server its flags) and pass them here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from portique.errors import InvalidArgument, NoSuchObject, NotFound

if TYPE_CHECKING:
    from portique.engine.engine import Engine
    from portique.image.pull import ProgressEvent, PullResult
    from portique.image.push import PushResult
    from portique.image.registry.auth import CredentialSource
    from portique.image.registry.client import RegistryClient
    from portique.oci.reference import Reference

Progress = Callable[["ProgressEvent"], None]

__all__ = ["client", "given", "given_many", "login", "pull", "pull_refs", "push", "push_refs"]


def client(
    *,
    insecure: Iterable[str] = (),
    tls_verify: bool = True,
    credentials: CredentialSource | None = None,
) -> RegistryClient:
    """A registry client; `credentials` None: Docker's config.json (and Podman's)."""
    from portique.image.registry.client import RegistryClient

    return RegistryClient(credentials=credentials, insecure=set(insecure), tls_verify=tls_verify)


def given(server: str, username: str, password: str) -> CredentialSource:
    """Credentials for one registry only (an API request's, or a login's)."""
    return given_many({server: (username, password)})


def given_many(auths: Mapping[str, tuple[str, str]]) -> CredentialSource:
    """Credentials by registry (a build request's X-Registry-Config); nothing
    else is consulted, not even Docker's config.json."""
    from portique.image.credentials import Credentials, normalize_server

    return Credentials({normalize_server(s): creds for s, creds in auths.items() if s}, {})


def login(
    server: str,
    username: str,
    password: str,
    *,
    insecure: Iterable[str] = (),
    tls_verify: bool = True,
) -> str:
    """Check `username`/`password` against `server`'s /v2/ (through its token
    server when it has one); return the registry's host. Nothing is stored:
    the CLI stores what passed, the API's clients keep their own."""
    from portique.image.credentials import normalize_server

    if not username:
        raise InvalidArgument("username is required")
    if not password:
        raise InvalidArgument("password is required")
    host = normalize_server(server or "docker.io")
    if not host:
        raise InvalidArgument(f"invalid registry address {server!r}")
    c = client(
        insecure=insecure, tls_verify=tls_verify, credentials=given(host, username, password)
    )
    c.ping(host)
    return host


# ---- pull ------------------------------------------------------------------------------


def pull_refs(name: str, *, all_tags: bool, client: RegistryClient) -> list[Reference]:
    """What `pull [-a] NAME` fetches: NAME (latest by default), or every tag of
    its repository."""
    from portique.oci.reference import parse_reference

    as_typed = parse_reference(name, default_tag=None)
    if not all_tags:
        return [parse_reference(name)]
    if as_typed.tag is not None or as_typed.digest is not None:
        raise InvalidArgument("tag can't be used with --all-tags/-a")
    refs = [as_typed.with_tag(t) for t in sorted(client.list_tags(as_typed))]
    if not refs:
        raise NotFound(f"no tags in repository {as_typed.familiar_name()}")
    return refs


def pull(
    eng: Engine,
    name: str,
    *,
    all_tags: bool = False,
    platform: str | None = None,
    progress: Progress | None = None,
    client: RegistryClient,
) -> list[PullResult]:
    """`POST /images/create?fromImage=NAME[&tag=T]`: each reference of
    `pull_refs`, with Docker's progress (`<tag>: Pulling from <repo>` first)."""
    from portique.engine import images
    from portique.image.pull import ProgressEvent

    results = []
    for ref in pull_refs(name, all_tags=all_tags, client=client):

        def report(event: ProgressEvent, ref: Reference = ref) -> None:
            if progress is None:
                return
            if not event.id and event.status.startswith("Pulling from "):
                progress(ProgressEvent("", f"{ref.tag or ref.digest}: Pulling from {ref.path}"))
            else:
                progress(event)

        results.append(
            images.pull(eng, str(ref), platform=platform, progress=report, client=client)
        )
    return results


# ---- push -------------------------------------------------------------------------------


def push_refs(eng: Engine, name: str, *, all_tags: bool) -> list[Reference]:
    """What `push [-a] NAME` sends: NAME (latest by default), or every local
    tag of its repository; a missing image is NoSuchObject."""
    from portique.engine import images
    from portique.oci.reference import parse_reference

    as_typed = parse_reference(name, default_tag=None)
    if not all_tags:
        ref = parse_reference(name)
        if ref.digest is not None:
            raise InvalidArgument(f"cannot push a digest reference: {ref.familiar()}")
        images.resolve(eng, name)
        return [ref]
    if as_typed.tag is not None or as_typed.digest is not None:
        raise InvalidArgument("tag can't be used with --all-tags/-a")
    refs = sorted(
        {
            r
            for image in eng.images.list()
            for r in (parse_reference(t) for t in image.repo_tags)
            if r.repository == as_typed.repository
        },
        key=str,
    )
    if not refs:
        raise NoSuchObject("image", as_typed.familiar_name())
    return refs


def push(
    eng: Engine,
    name: str,
    *,
    all_tags: bool = False,
    progress: Progress | None = None,
    client: RegistryClient,
    chunk_size: int | None = None,
) -> list[PushResult]:
    """`POST /images/{name}/push`: each reference of `push_refs`, in order, each
    recorded as dockerd's `push` event."""
    from portique.engine import events
    from portique.image.push import push_image

    results = []
    for ref in push_refs(eng, name, all_tags=all_tags):
        results.append(
            push_image(
                eng.images, str(ref), progress=progress, client=client, chunk_size=chunk_size
            )
        )
        events.pulled(eng, ref, eng.images.resolve(str(ref)), "push")
    return results
