"""Registry authentication: challenges, HTTP basic, and Docker's bearer-token flow.

A registry that wants credentials answers 401 with a `WWW-Authenticate`
challenge (RFC 7235). For `Basic`, we send the user's credentials. For
`Bearer realm=...,service=...,scope=...`, we ask the token server at `realm`
for a token granting our scopes (with the credentials as Basic auth, or
anonymously) and send it as `Authorization: Bearer <token>` (the distribution
token specification). Tokens are cached per (registry, scopes) until shortly
before they expire, and the challenge is remembered per registry, so after
the first 401 each request carries the right header up front.

The HTTP is injected (`fetch`), so this module stays testable without a network.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from portique.image.registry.errors import RegistryError, Unauthorized

# A token without expires_in lives 60 s (the token spec's default).
DEFAULT_TOKEN_LIFETIME: Final = 60
# Refresh a token this long before it expires (clock skew, slow requests).
EXPIRY_MARGIN: Final = 10
MAX_TOKEN_RESPONSE: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lowercase: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value into challenges (scheme + auth-params).

    Handles several challenges in one header (`Basic realm="a", Bearer realm="b"`),
    quoted strings with backslash escapes and commas inside quotes.
    """
    challenges: list[Challenge] = []
    i, n = 0, len(header)

    def skip_ws(j: int) -> int:
        while j < n and header[j] in " \t":
            j += 1
        return j

    def token(j: int) -> tuple[str, int]:
        start = j
        while j < n and header[j] not in ' \t,="':
            j += 1
        return header[start:j], j

    current: Challenge | None = None
    while i < n:
        i = skip_ws(i)
        if i < n and header[i] == ",":
            i += 1
            continue
        word, j = token(i)
        if not word:
            # Garbage (e.g. a stray quote): stop rather than loop.
            break
        k = skip_ws(j)
        if k < n and header[k] == "=" and current is not None:
            # An auth-param of the current challenge.
            k = skip_ws(k + 1)
            if k < n and header[k] == '"':
                k += 1
                value_chars: list[str] = []
                while k < n and header[k] != '"':
                    if header[k] == "\\" and k + 1 < n:
                        k += 1
                    value_chars.append(header[k])
                    k += 1
                value = "".join(value_chars)
                k += 1  # closing quote
            else:
                value, k = token(k)
            current.params[word.lower()] = value
            i = k
        else:
            current = Challenge(word.lower(), {})
            challenges.append(current)
            i = j
    return challenges


class CredentialSource(Protocol):
    def get(self, host: str) -> tuple[str, str] | None: ...


Fetch = Callable[[str, dict[str, str]], tuple[int, bytes]]
"""GET url with headers -> (status, body); raises RegistryError when unreachable."""


@dataclass(slots=True)
class _Token:
    value: str
    expires: float


def basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Authenticator:
    """Chooses the Authorization header for a request; thread-safe."""

    def __init__(
        self,
        credentials: CredentialSource | None,
        fetch: Fetch,
        *,
        allow_plain_http: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self._credentials = credentials
        self._fetch = fetch
        # May credentials travel to this token server (host[:port]) without TLS?
        self._allow_plain_http = allow_plain_http
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()

    def credentials_for(self, host: str) -> tuple[str, str] | None:
        return self._credentials.get(host) if self._credentials is not None else None

    def header(self, host: str, scopes: Sequence[str]) -> dict[str, str]:
        """The Authorization header for `host` if we already know its challenge."""
        challenge = self._challenges.get(host)
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.credentials_for(host)
            return {"Authorization": basic_header(*creds)} if creds else {}
        if challenge.scheme == "bearer":
            token = self._token(host, challenge, tuple(sorted(set(scopes))))
            return {"Authorization": f"Bearer {token}"} if token else {}
        return {}

    def challenged(
        self, host: str, header_value: str | None, scopes: Sequence[str], *, sent_auth: bool
    ) -> bool:
        """Record a 401's challenge; True if one retry with new credentials can help.

        The caller retries at most once, so a refused token does not loop.
        """
        for challenge in parse_challenges(header_value or ""):
            if challenge.scheme not in ("basic", "bearer"):
                continue
            with self._lock:
                self._challenges[host] = challenge
                # A 401 despite a token: it expired or lacks a scope; drop it.
                self._tokens.pop((host, tuple(sorted(set(scopes)))), None)
            if challenge.scheme == "basic":
                return not sent_auth and self.credentials_for(host) is not None
            return True
        return False

    def _token(self, host: str, challenge: Challenge, scopes: tuple[str, ...]) -> str | None:
        key = (host, scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires > time.monotonic():
                return cached.value
            # Fetch under the lock: N parallel layer downloads need one token, not N.
            token = self.fetch_token(host, challenge, scopes)
            self._tokens[key] = token
            return token.value

    def fetch_token(self, host: str, challenge: Challenge, scopes: Sequence[str]) -> _Token:
        realm = challenge.params.get("realm", "")
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise RegistryError(f"{host}: invalid token realm {realm[:200]!r}")
        query: list[tuple[str, str]] = []
        if "service" in challenge.params:
            query.append(("service", challenge.params["service"]))
        wanted = list(scopes)
        extra = challenge.params.get("scope")
        if extra:
            wanted += [s for s in extra.split(" ") if s and s not in wanted]
        query += [("scope", s) for s in wanted]
        headers: dict[str, str] = {}
        creds = self.credentials_for(host)
        if (
            creds is not None
            and parsed.scheme == "http"
            and not self._allow_plain_http(parsed.netloc)
        ):
            raise Unauthorized(
                f"{host}: refusing to send credentials over plain HTTP to {parsed.netloc}",
                hint="the token server must use HTTPS, or be listed as an insecure registry",
            )
        if creds is not None:
            query.append(("account", creds[0]))
            headers["Authorization"] = basic_header(*creds)
        sep = "&" if parsed.query else "?"
        url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        status, body = self._fetch(url, headers)
        if status in (401, 403):
            who = f"as {creds[0]!r}" if creds else "anonymously"
            raise Unauthorized(
                f"{host}: authentication {who} refused by the token server"
                + (": incorrect username or password" if creds else "")
            )
        if status != 200:
            raise RegistryError(f"{host}: token server {parsed.netloc} answered {status}")
        return parse_token_response(body, host)


def parse_token_response(body: bytes, host: str) -> _Token:
    if len(body) > MAX_TOKEN_RESPONSE:
        raise RegistryError(f"{host}: token response too large")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{host}: token response is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{host}: token response is not an object")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n"):
        raise RegistryError(f"{host}: token response has no token")
    lifetime = doc.get("expires_in")
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return _Token(value, time.monotonic() + max(lifetime - EXPIRY_MARGIN, 1))


def repository_scope(repository_path: str, actions: str = "pull") -> str:
    return f"repository:{repository_path}:{actions}"


__all__ = [
    "Authenticator",
    "Challenge",
    "CredentialSource",
    "basic_header",
    "parse_challenges",
    "parse_token_response",
    "repository_scope",
]
