"""Image references, parsed and normalised the way Docker does it.

Grammar (after distribution's reference package):

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path
    domain    := host [ ":" port ]          host: DNS labels, "localhost", or "[IPv6]"
    path      := component ( "/" component )*
    component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

Normalisation: the first path element is a domain only if it contains "." or
":" or is "localhost" (else the reference is on Docker Hub: `docker.io`);
`index.docker.io` is `docker.io`; a single-component Docker Hub path gets
`library/`; with neither tag nor digest, the tag is `latest`.
"""

from __future__ import annotations

import re

from portique.errors import InvalidArgument
from portique.oci.digest import parse_digest
from portique.oci.value import replace, value

TYPE_CHECKING = False  # typing itself costs the runtime an import
if TYPE_CHECKING:
    from typing import Final

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
OFFICIAL_REPO_PREFIX: Final = "library/"
DEFAULT_TAG: Final = "latest"
NAME_TOTAL_LENGTH_MAX: Final = 255

_COMPONENT: Final = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN_LABEL: Final = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN: Final = re.compile(
    rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)
# A bare 64-hex string is an image ID, never a repository (Docker refuses it too).
_IDENTIFIER: Final = re.compile(r"[a-f0-9]{64}")


def _invalid(s: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {why}: {s[:300]!r}")


@value
class Reference:
    """A normalised image reference; at least one of tag and digest is usually set."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """`docker.io/library/busybox`: the full name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        """Same as `repository` (Docker's Named.Name())."""
        return self.repository

    def familiar_name(self) -> str:
        """`busybox`, `user/app`, `127.0.0.1:5000/busybox`: Docker's short repository name."""
        if self.domain == DEFAULT_DOMAIN:
            rest = self.path
            if rest.startswith(OFFICIAL_REPO_PREFIX) and rest.count("/") == 1:
                return rest[len(OFFICIAL_REPO_PREFIX) :]
            return rest
        return self.repository

    def familiar(self) -> str:
        """Docker's display form: `busybox:latest`, `127.0.0.1:5000/busybox@sha256:...`."""
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        s = ""
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    def __str__(self) -> str:
        return self.repository + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.fullmatch(tag):
            raise _invalid(tag, "invalid tag")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=parse_digest(digest))

    @property
    def reference(self) -> str:
        """What goes into /v2/<name>/manifests/<reference>: the digest if any, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def tagged(self) -> str:
        """`repository:tag` (no digest), e.g. for the image's RepoTags."""
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        # Docker also treats an uppercase first element as a domain (it cannot be a path).
        if sep and first != first.lower():
            return first, rest
        return DEFAULT_DOMAIN, name
    return first, rest


def parse_reference(s: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalise `s`; raise InvalidArgument "invalid reference format: ...".

    `default_tag=None` keeps a reference without tag or digest untagged (for
    callers that need to know whether the user named a tag).
    """
    if not isinstance(s, str) or not s:
        raise InvalidArgument("invalid reference format: empty reference")
    if len(s) > 4096 or any(c.isspace() for c in s):
        raise _invalid(s, "unexpected characters")
    if _IDENTIFIER.fullmatch(s):
        raise _invalid(s, "cannot specify 64-byte hexadecimal strings")
    remainder, at, digest = s.partition("@")
    if at:
        try:
            digest = parse_digest(digest)
        except InvalidArgument:
            raise _invalid(s, "invalid digest") from None
    else:
        digest = ""
    # The tag follows the last ':' that comes after the last '/' (a port is before it).
    tag = ""
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _invalid(s, "invalid tag")
    domain, path = _split_domain(remainder)
    if (domain != DEFAULT_DOMAIN or "/" in remainder) and not _DOMAIN.fullmatch(domain):
        raise _invalid(s, "invalid domain")
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if not path:
        raise _invalid(s, "missing repository name")
    if path != path.lower():
        raise _invalid(s, "repository name must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise _invalid(s, "invalid repository name component")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(
            s, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if not tag and not digest and default_tag is not None:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag or None, digest=digest or None)


def parse_repository(s: str) -> Reference:
    """A repository name alone (no tag, no digest), e.g. for `--from-repo`."""
    ref = parse_reference(s, default_tag=None)
    if ref.tag is not None or ref.digest is not None:
        raise _invalid(s, "expected a repository name without tag or digest")
    return ref


__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "Reference",
    "parse_reference",
    "parse_repository",
]
