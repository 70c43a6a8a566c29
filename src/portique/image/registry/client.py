"""A client for the OCI distribution API (v2): manifests, blobs, uploads, mounts.

Every call names its repository through a `Reference`; the client adds the
authentication the registry asks for (see auth.py), verifies what it is given
(a manifest fetched by digest must hash to it, a blob is verified by the
caller while streaming, see `BlobStream`), and maps registry errors to
one-line PortiqueErrors.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Final

from portique import __version__
from portique.errors import InvalidArgument
from portique.image.registry.auth import Authenticator, CredentialSource, repository_scope
from portique.image.registry.errors import (
    RegistryError,
    RegistryUnreachable,
    Unauthorized,
    error_for,
)
from portique.image.registry.transport import Body, Response, Transport, TransportError
from portique.oci.digest import DigestMismatch, algorithm_of, compute_digest, parse_digest
from portique.oci.image import ACCEPT_MANIFEST, MAX_MANIFEST_SIZE
from portique.oci.reference import Reference

DEFAULT_USER_AGENT: Final = f"portique/{__version__}"
STREAM_CHUNK: Final = 1 << 20
# Uploads larger than this go in PATCH chunks (distribution accepts either).
DEFAULT_CHUNK_THRESHOLD: Final = 64 << 20
DEFAULT_CHUNK_SIZE: Final = 32 << 20


class BlobStream:
    """A blob download in progress: iterate it for chunks, close it when done.

    `offset` is where the bytes start: the requested offset when the server
    honoured the Range request (206), 0 when it sent the whole blob (200).
    """

    def __init__(self, response: Response, offset: int) -> None:
        self._response = response
        self.offset = offset
        length = response.headers.get("Content-Length")
        self.length: int | None = int(length) if length and length.isdigit() else None

        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.stream(STREAM_CHUNK)
        self._complete = True

    def close(self) -> None:
        # A connection whose body was not read to the end cannot be reused.
        if not self._complete:
            self._response.close()
        self._response.release_conn()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_limited(resp: Response, limit: int, what: str) -> bytes:
    """The whole body, refusing more than `limit` bytes (a hostile server may send more)."""
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in resp.stream(65536):
            total += len(chunk)
            if total > limit:
                resp.close()  # never put a connection with unread bytes back in the pool
                raise InvalidArgument(f"{what} is larger than {limit} bytes")
            chunks.append(chunk)
    except TransportError as exc:
        resp.close()
        raise RegistryUnreachable(f"{what}: connection lost: {exc}") from None
    except BaseException:
        resp.close()
        raise
    resp.release_conn()
    return b"".join(chunks)


def _finish(resp: Response, limit: int = 1 << 16) -> bytes:
    """Up to `limit` bytes of a body we do not otherwise need; frees the connection.

    The connection goes back to the pool only if its body ended; else it is closed.
    """
    try:
        data = resp.read(limit + 1)
    except TransportError:
        resp.close()
        return b""
    if len(data) > limit:
        resp.close()
        return data[:limit]
    resp.release_conn()
    return data


def _content_type(resp: Response) -> str:
    return (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip()


class RegistryClient:
    def __init__(
        self,
        *,
        credentials: CredentialSource | None = None,
        insecure: set[str] | None = None,
        tls_verify: bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
        transport: Transport | None = None,
    ) -> None:
        if credentials is None:
            from portique.image.credentials import Credentials

            credentials = Credentials.load()
        self.transport = transport or Transport(
            insecure=insecure or set(), tls_verify=tls_verify, user_agent=user_agent
        )
        self.auth = Authenticator(
            credentials, self._fetch_token, allow_plain_http=self.transport.is_insecure
        )

    # ---- plumbing -------------------------------------------------------------------

    def _fetch_token(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        resp = self.transport.request("GET", url, headers=headers)
        return resp.status, _read_limited(resp, 1 << 20, "token response")

    def _url(self, ref: Reference, tail: str) -> str:
        return f"{self.transport.base_url(ref.domain)}/v2/{ref.path}/{tail}"

    def request(
        self,
        method: str,
        domain: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> Response:
        """A request with authentication: one retry after a 401 challenge.

        The response is streamed: the caller reads it (bounded) or `_finish`es it.
        A streamed body (file object) cannot be replayed: callers send those
        only after an earlier request of the same scopes has authenticated.
        Credentials go only to the registry's own host: an upload Location on
        another host (blob storage) gets none.
        """
        own_host = (
            urllib.parse.urlsplit(url).netloc
            == urllib.parse.urlsplit(self.transport.base_url(domain)).netloc
        )
        sent = self.auth.header(domain, scopes) if own_host else {}
        resp = self.transport.request(method, url, headers={**(headers or {}), **sent}, body=body)
        if resp.status != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate")
        replayable = body is None or isinstance(body, bytes)
        if (
            not own_host
            or not replayable
            or not self.auth.challenged(domain, challenge, scopes, sent_auth=bool(sent))
        ):
            return resp  # the caller reports the 401 (its body says why)
        _finish(resp)
        auth = self.auth.header(domain, scopes)
        return self.transport.request(method, url, headers={**(headers or {}), **auth}, body=body)

    def _fail(self, resp: Response, what: str) -> Exception:
        return error_for(resp.status, _finish(resp), what)

    # ---- API -----------------------------------------------------------------------

    def ping(self, domain: str) -> None:
        """Check that `domain` is a v2 registry and that our credentials are accepted.

        For `login`: with a token registry, credentials are proved by getting a
        token (without scope) from its token server.
        """
        url = f"{self.transport.base_url(domain)}/v2/"
        resp = self.request("GET", domain, url)
        if resp.status == 200:
            _finish(resp)
            return
        raise self._fail(resp, f"login to {domain}")

    def get_manifest(
        self, ref: Reference, accept: Sequence[str] = ACCEPT_MANIFEST
    ) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of `ref`'s manifest; a digest ref is verified."""
        resp = self.request(
            "GET",
            ref.domain,
            self._url(ref, f"manifests/{ref.reference}"),
            scopes=[repository_scope(ref.path)],
            headers={"Accept": ", ".join(accept)},
        )
        if resp.status != 200:
            exc = self._fail(resp, f"manifest for {ref.familiar()}")
            if isinstance(exc, Unauthorized) and self.auth.credentials_for(ref.domain) is None:
                exc.hint = f"pull access denied; may require 'portique login {ref.domain}'"
            raise exc
        media_type = _content_type(resp)
        header_digest = resp.headers.get("Docker-Content-Digest")
        data = _read_limited(resp, MAX_MANIFEST_SIZE, f"manifest for {ref.familiar()}")
        if ref.digest is not None:
            digest = compute_digest(data, algorithm_of(ref.digest))
            if digest != ref.digest:
                raise DigestMismatch(
                    f"manifest for {ref.familiar()}: content hashes to {digest}, not {ref.digest}"
                )
        else:
            digest = compute_digest(data)
            if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
                raise DigestMismatch(
                    f"manifest for {ref.familiar()}: registry says {header_digest}, "
                    f"content hashes to {digest}"
                )
        return data, media_type, digest

    def head_manifest(
        self, ref: Reference, accept: Sequence[str] = ACCEPT_MANIFEST
    ) -> tuple[str | None, str, int | None]:
        """(digest, media type, size) from a HEAD; NotFound if the registry lacks it."""
        resp = self.request(
            "HEAD",
            ref.domain,
            self._url(ref, f"manifests/{ref.reference}"),
            scopes=[repository_scope(ref.path)],
            headers={"Accept": ", ".join(accept)},
        )
        _finish(resp)
        if resp.status != 200:
            raise error_for(resp.status, b"", f"manifest for {ref.familiar()}")
        digest = resp.headers.get("Docker-Content-Digest")
        if digest is not None:
            parse_digest(digest)
        length = resp.headers.get("Content-Length")
        return digest, _content_type(resp), int(length) if length and length.isdigit() else None

    def fetch_blob(self, ref: Reference, digest: str, *, offset: int = 0) -> BlobStream:
        """Start downloading a blob (from `offset` with a Range request when > 0)."""
        parse_digest(digest)
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        resp = self.request(
            "GET",
            ref.domain,
            self._url(ref, f"blobs/{digest}"),
            scopes=[repository_scope(ref.path)],
            headers=headers,
        )
        if resp.status == 206 and offset > 0:
            content_range = resp.headers.get("Content-Range", "")
            start = content_range.removeprefix("bytes ").split("-", 1)[0]
            if start.isdigit() and int(start) == offset:
                return BlobStream(resp, offset)
            _finish(resp)
            return self.fetch_blob(ref, digest)
        if resp.status == 416 and offset > 0:
            _finish(resp)
            return self.fetch_blob(ref, digest)
        if resp.status != 200:
            raise self._fail(resp, f"blob {digest} of {ref.familiar_name()}")
        return BlobStream(resp, 0)

    def fetch_blob_bytes(self, ref: Reference, digest: str, limit: int) -> bytes:
        """A small blob (a config) in memory, verified against `digest`."""
        stream = self.fetch_blob(ref, digest)
        # _read_limited frees or closes the connection itself.
        data = _read_limited(stream._response, limit, f"blob {digest}")
        actual = compute_digest(data, algorithm_of(digest))
        if actual != digest:
            raise DigestMismatch(f"blob {digest}: content hashes to {actual}")
        return data

    def blob_exists(self, ref: Reference, digest: str, *, push: bool = False) -> bool:
        resp = self.request(
            "HEAD",
            ref.domain,
            self._url(ref, f"blobs/{parse_digest(digest)}"),
            scopes=[repository_scope(ref.path, "pull,push" if push else "pull")],
        )
        _finish(resp)
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise error_for(resp.status, b"", f"blob {digest} of {ref.familiar_name()}")

    def _absolute(self, ref: Reference, location: str | None) -> str:
        if not location:
            raise RegistryError(f"{ref.domain}: upload answer without a Location")
        return urllib.parse.urljoin(self.transport.base_url(ref.domain) + "/", location)

    def _post_upload(self, ref: Reference, scopes: Sequence[str], query: str) -> Response:
        """POST blobs/uploads/ (a new upload session, or a mount with ?mount=&from=)."""
        return self.request(
            "POST",
            ref.domain,
            self._url(ref, "blobs/uploads/") + query,
            scopes=scopes,
            headers={"Content-Length": "0"},
            body=b"",
        )

    def _start_upload(self, ref: Reference, scopes: Sequence[str], query: str = "") -> str:
        resp = self._post_upload(ref, scopes, query)
        if resp.status != 202:
            raise self._fail(resp, f"upload to {ref.familiar_name()}")
        _finish(resp)
        return self._absolute(ref, resp.headers.get("Location"))

    def upload_blob(
        self,
        ref: Reference,
        digest: str,
        size: int,
        stream: IO[bytes],
        *,
        chunk_size: int | None = None,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
    ) -> str:
        """Upload a blob: one monolithic PUT, or PATCH chunks of `chunk_size` then PUT.

        Chunks are used when `chunk_size` is given or the blob exceeds `chunk_threshold`.
        """
        parse_digest(digest)
        scopes = [repository_scope(ref.path, "pull,push")]
        location = self._start_upload(ref, scopes)
        if chunk_size is None and size > chunk_threshold:
            chunk_size = DEFAULT_CHUNK_SIZE
        if chunk_size is None:
            resp = self.request(
                "PUT",
                ref.domain,
                _with_query(location, digest=digest),
                scopes=scopes,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=stream,
            )
        else:
            if chunk_size <= 0:
                raise InvalidArgument(f"invalid chunk size {chunk_size}")
            sent = 0
            while sent < size:
                data = stream.read(min(chunk_size, size - sent))
                if not data:
                    raise InvalidArgument(f"blob {digest}: source ended at {sent} of {size} bytes")
                resp = self.request(
                    "PATCH",
                    ref.domain,
                    location,
                    scopes=scopes,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(len(data)),
                        "Content-Range": f"{sent}-{sent + len(data) - 1}",
                    },
                    body=data,
                )
                if resp.status != 202:
                    raise self._fail(resp, f"upload of {digest} to {ref.familiar_name()}")
                _finish(resp)
                location = self._absolute(ref, resp.headers.get("Location"))
                sent += len(data)
            resp = self.request(
                "PUT",
                ref.domain,
                _with_query(location, digest=digest),
                scopes=scopes,
                headers={"Content-Length": "0"},
                body=b"",
            )
        if resp.status != 201:
            raise self._fail(resp, f"upload of {digest} to {ref.familiar_name()}")
        _finish(resp)
        returned = resp.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise DigestMismatch(f"registry stored {returned} for blob {digest}")
        return digest

    def mount_blob(self, ref: Reference, digest: str, from_repo: Reference | str) -> bool:
        """Cross-repository mount of a blob the registry already has in `from_repo`.

        `from_repo` is a reference, or a repository path on `ref`'s registry
        ("library/busybox"). False when the registry did not mount it (then upload).
        """
        if isinstance(from_repo, str):
            from portique.oci.reference import parse_repository

            from_repo = parse_repository(f"{ref.domain}/{from_repo}")
        if from_repo.domain != ref.domain:
            return False
        scopes = [
            repository_scope(ref.path, "pull,push"),
            repository_scope(from_repo.path, "pull"),
        ]
        query = "?" + urllib.parse.urlencode(
            {"mount": parse_digest(digest), "from": from_repo.path}
        )
        resp = self._post_upload(ref, scopes, query)
        if resp.status in (201, 202, 401, 403, 404):
            _finish(resp)
        if resp.status == 201:
            return True
        if resp.status == 202:
            # The registry opened a normal upload instead: cancel it, the caller uploads.
            location = resp.headers.get("Location")
            if location:
                _finish(
                    self.request("DELETE", ref.domain, self._absolute(ref, location), scopes=scopes)
                )
            return False
        if resp.status in (401, 403, 404):
            return False
        raise self._fail(resp, f"mount of {digest} into {ref.familiar_name()}")

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """PUT a manifest under `ref`'s tag (or digest); return its digest."""
        digest = compute_digest(data)
        if ref.digest is not None and ref.digest != digest:
            raise DigestMismatch(f"manifest hashes to {digest}, not {ref.digest}")
        resp = self.request(
            "PUT",
            ref.domain,
            self._url(ref, f"manifests/{ref.reference}"),
            scopes=[repository_scope(ref.path, "pull,push")],
            headers={"Content-Type": media_type},
            body=data,
        )
        if resp.status != 201:
            raise self._fail(resp, f"manifest put for {ref.familiar()}")
        _finish(resp)
        returned = resp.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise DigestMismatch(f"registry stored {returned} for manifest {digest}")
        return digest

    def list_tags(self, ref: Reference) -> list[str]:
        import json

        resp = self.request(
            "GET",
            ref.domain,
            self._url(ref, "tags/list"),
            scopes=[repository_scope(ref.path)],
        )
        if resp.status != 200:
            raise self._fail(resp, f"tags of {ref.familiar_name()}")
        try:
            doc = json.loads(_read_limited(resp, 16 << 20, "tag list"))
        except (ValueError, RecursionError):
            raise RegistryError(f"{ref.domain}: the tag list is not JSON") from None
        tags = doc.get("tags") if isinstance(doc, dict) else None
        return [t for t in tags or [] if isinstance(t, str)]


def _with_query(url: str, **params: str) -> str:
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + sep + urllib.parse.urlencode(params)


__all__ = ["BlobStream", "RegistryClient", "Unauthorized"]
