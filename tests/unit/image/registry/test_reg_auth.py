"""WWW-Authenticate parsing and the token flow, against an in-memory token server."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from portique.image.registry.auth import (
    Authenticator,
    Challenge,
    parse_challenges,
    parse_token_response,
)
from portique.image.registry.errors import RegistryError, Unauthorized, describe, error_for


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry"', [Challenge("basic", {"realm": "Registry"})]),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull",
                    },
                )
            ],
        ),
        (
            'Bearer realm="https://a/t", scope="repository:x:pull,push"',
            [Challenge("bearer", {"realm": "https://a/t", "scope": "repository:x:pull,push"})],
        ),
        (
            'Basic realm="a", Bearer realm="b",service=s',
            [
                Challenge("basic", {"realm": "a"}),
                Challenge("bearer", {"realm": "b", "service": "s"}),
            ],
        ),
        ('Bearer realm="with \\"quote\\""', [Challenge("bearer", {"realm": 'with "quote"'})]),
        ("Negotiate", [Challenge("negotiate", {})]),
        ('BEARER Realm="x"', [Challenge("bearer", {"realm": "x"})]),
        ("", []),
        ('"unterminated', []),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


class FakeTokenServer:
    """The token endpoint as data: records calls, checks the password."""

    def __init__(self, users: dict[str, str], *, status: int = 200, expires_in: int = 300) -> None:
        self.users = users
        self.calls: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.status = status
        self.expires_in = expires_in

    def __call__(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        user = None
        auth = headers.get("Authorization")
        if auth:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return 401, b"{}"
        self.calls.append((parts.path, query, user))
        if self.status != 200:
            return self.status, b""
        token = f"tok-{len(self.calls)}"
        return 200, json.dumps({"token": token, "expires_in": self.expires_in}).encode()


class Creds:
    def __init__(self, entries: dict[str, tuple[str, str]]) -> None:
        self.entries = entries

    def get(self, host: str) -> tuple[str, str] | None:
        return self.entries.get(host)


BEARER = 'Bearer realm="https://auth.example/token",service="reg"'


def test_no_header_before_a_challenge() -> None:
    auth = Authenticator(Creds({}), FakeTokenServer({}))
    assert auth.header("reg.example", ["repository:a:pull"]) == {}


def test_bearer_flow_with_credentials_and_cache() -> None:
    server = FakeTokenServer({"u": "p"})
    auth = Authenticator(Creds({"reg.example": ("u", "p")}), server)
    scopes = ["repository:a:pull"]
    assert auth.challenged("reg.example", BEARER, scopes, sent_auth=False)
    assert auth.header("reg.example", scopes) == {"Authorization": "Bearer tok-1"}
    # Cached: no second call for the same scopes.
    assert auth.header("reg.example", scopes) == {"Authorization": "Bearer tok-1"}
    assert len(server.calls) == 1
    path, query, user = server.calls[0]
    assert path == "/token"
    assert query == {"service": ["reg"], "scope": ["repository:a:pull"], "account": ["u"]}
    assert user == "u"
    # Other scopes: another token.
    assert auth.header("reg.example", ["repository:b:pull,push"]) == {
        "Authorization": "Bearer tok-2"
    }


def test_bearer_scope_from_challenge_is_added() -> None:
    server = FakeTokenServer({})
    auth = Authenticator(Creds({}), server)
    challenge = BEARER + ',scope="repository:x:pull"'
    auth.challenged("h", challenge, ["repository:y:pull"], sent_auth=False)
    auth.header("h", ["repository:y:pull"])
    assert server.calls[0][1]["scope"] == ["repository:y:pull", "repository:x:pull"]
    assert "account" not in server.calls[0][1]


def test_refused_token_is_dropped_on_new_challenge() -> None:
    server = FakeTokenServer({})
    auth = Authenticator(Creds({}), server)
    scopes = ["repository:a:pull"]
    auth.challenged("h", BEARER, scopes, sent_auth=False)
    assert auth.header("h", scopes)["Authorization"] == "Bearer tok-1"
    assert auth.challenged("h", BEARER, scopes, sent_auth=True)
    assert auth.header("h", scopes)["Authorization"] == "Bearer tok-2"


def test_expired_token_is_refetched(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("portique.image.registry.auth.time.monotonic", lambda: now[0])
    server = FakeTokenServer({}, expires_in=60)
    auth = Authenticator(Creds({}), server)
    auth.challenged("h", BEARER, [], sent_auth=False)
    assert auth.header("h", [])["Authorization"] == "Bearer tok-1"
    now[0] += 45  # within 60 s minus the margin: still cached
    assert auth.header("h", [])["Authorization"] == "Bearer tok-1"
    now[0] += 10  # past expiry minus margin
    assert auth.header("h", [])["Authorization"] == "Bearer tok-2"
    assert len(server.calls) == 2


def test_wrong_password_is_unauthorized() -> None:
    auth = Authenticator(Creds({"h": ("u", "wrong")}), FakeTokenServer({"u": "p"}))
    auth.challenged("h", BEARER, [], sent_auth=False)
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        auth.header("h", [])


def test_token_server_error() -> None:
    auth = Authenticator(Creds({}), FakeTokenServer({}, status=500))
    auth.challenged("h", BEARER, [], sent_auth=False)
    with pytest.raises(RegistryError, match=r"token server auth\.example answered 500"):
        auth.header("h", [])


@pytest.mark.parametrize("realm", ["file:///etc/passwd", "not a url", ""])
def test_bad_realm(realm: str) -> None:
    auth = Authenticator(Creds({}), FakeTokenServer({}))
    auth.challenged("h", f'Bearer realm="{realm}"', [], sent_auth=False)
    with pytest.raises(RegistryError, match="invalid token realm"):
        auth.header("h", [])


def test_basic() -> None:
    auth = Authenticator(Creds({"h": ("u", "p")}), FakeTokenServer({}))
    assert auth.challenged("h", 'Basic realm="r"', [], sent_auth=False)
    assert auth.header("h", []) == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    # Sent already and refused: retrying cannot help.
    assert not auth.challenged("h", 'Basic realm="r"', [], sent_auth=True)
    # No credentials: nothing to retry with.
    anon = Authenticator(Creds({}), FakeTokenServer({}))
    assert not anon.challenged("h", 'Basic realm="r"', [], sent_auth=False)
    assert not anon.challenged("h", "Negotiate", [], sent_auth=False)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"[]", "not an object"),
        (b"nope", "not JSON"),
        (b"{}", "no token"),
        (b'{"token": "a\\r\\nX-Evil: 1"}', "no token"),
    ],
)
def test_token_response_rejects(body: bytes, match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        parse_token_response(body, "h")


def test_token_response_access_token() -> None:
    assert parse_token_response(b'{"access_token": "abc"}', "h").value == "abc"


def test_error_mapping() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    assert describe(404, body) == ("MANIFEST_UNKNOWN", "manifest unknown: manifest unknown")
    err = error_for(404, body, "manifest for x:1")
    assert str(err) == "manifest for x:1 not found: manifest unknown: manifest unknown"
    assert err.exit_code == 125
    assert isinstance(error_for(401, b"", "x"), Unauthorized)
    assert "registry answered 500" in str(error_for(500, b"<html>oops</html>", "x"))


def test_no_credentials_over_plain_http() -> None:
    plain = 'Bearer realm="http://auth.example/token",service="reg"'
    server = FakeTokenServer({"u": "p"})
    auth = Authenticator(Creds({"h": ("u", "p")}), server)
    auth.challenged("h", plain, [], sent_auth=False)
    with pytest.raises(Unauthorized, match="refusing to send credentials over plain HTTP"):
        auth.header("h", [])
    assert server.calls == []
    # Anonymous tokens may come over HTTP; so may credentials to an insecure token server.
    assert Authenticator(Creds({}), server).header("h", []) == {}
    anon = Authenticator(Creds({}), server)
    anon.challenged("h", plain, [], sent_auth=False)
    assert anon.header("h", [])["Authorization"].startswith("Bearer ")
    allowed = Authenticator(
        Creds({"h": ("u", "p")}), server, allow_plain_http=lambda host: host == "auth.example"
    )
    allowed.challenged("h", plain, [], sent_auth=False)
    assert allowed.header("h", [])["Authorization"].startswith("Bearer ")
