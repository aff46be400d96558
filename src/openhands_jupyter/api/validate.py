"""Input checks that run before any request: each failure is one readable InputError line."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import InputError
from .secrets import Secret

API_VERSIONS = ("v1", "v0", "auto")

_PART = r"[A-Za-z0-9_.-]+"
_OWNER_REPO = re.compile(rf"^{_PART}(?:/{_PART})+$")
_URL_FORMS = (
    re.compile(r"^https?://(?:www\.)?(?P<host>[^/]+)/(?P<path>.+?)(?:\.git)?/?$"),
    re.compile(r"^(?:ssh://)?git@(?P<host>[^:/]+)[:/](?P<path>.+?)(?:\.git)?/?$"),
)
_PROVIDERS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket"}


def check_task(task: str | None) -> str:
    if task is None or not str(task).strip():
        raise InputError("The task is empty: say what the agent should do.")
    return str(task)


def normalize_repository(repository: str | None) -> tuple[str | None, str | None]:
    """Return ``(owner/repo, git_provider)``; accepts web and git URLs of GitHub/GitLab/Bitbucket."""
    if repository is None:
        return None, None
    text = str(repository).strip()
    if not text:
        return None, None
    provider = None
    for form in _URL_FORMS:
        match = form.match(text)
        if match:
            provider = _PROVIDERS.get(match.group("host").lower())
            text = match.group("path")
            break
    text = text.strip("/")
    if text.endswith(".git"):
        text = text[:-4]
    if (
        not _OWNER_REPO.match(text)
        or ".." in text
        or (provider == "github" and text.count("/") != 1)
    ):
        raise InputError(
            f"Repository {repository!r} is not of the form owner/repo "
            "(a https://github.com/owner/repo URL works too)."
        )
    return text, provider


def check_branch(branch: str | None) -> str | None:
    if branch is None:
        return None
    text = str(branch).strip()
    if not text:
        return None
    if any(c.isspace() for c in text) or ".." in text or text.startswith("-") or "~" in text:
        raise InputError(f"Branch {branch!r} is not a valid git branch name.")
    return text


def check_max_cost(value: object) -> float | None:
    """A cost cap in dollars: a positive number, or ``None`` for none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(f"max_cost is a number of dollars, not {value!r}.")
    try:
        cap = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"max_cost is a number of dollars, not {value!r}.") from None
    if not cap > 0 or cap == float("inf"):
        raise InputError(f"max_cost must be a positive number of dollars, not {value!r}.")
    return cap


def check_api_version(value: str | None) -> str:
    text = (value or "auto").strip().lower()
    if text not in API_VERSIONS:
        raise InputError(f"Unknown api_version {value!r}: use one of v1, v0, auto.")
    return text


def is_loopback(host: str) -> bool:
    """This machine: localhost, a loopback address, or the unspecified 0.0.0.0 / ``::``
    (which connects to this machine)."""
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def check_base_url(base_url: str, *, allow_insecure: bool = False) -> str:
    """The server's URL as every link and request will use it: scheme and host in lower case,
    no query or fragment. Refuses a malformed URL, one that carries a user name or password
    (which would reach links, widgets and saved notebooks), and plain http to anything but
    this machine unless allowed."""
    text = str(base_url or "").strip()
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        parts, hostname, port = urlsplit(""), None, None
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "The base URL carries a user name or password (not shown here): remove them. "
            "OpenHands takes its key as api_key / OPENHANDS_API_KEY."
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not hostname:
        raise InputError(f"Base URL {text[:200]!r} is not an http(s) URL.")
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc += f":{port}"
    clean = f"{scheme}://{netloc}{parts.path}".rstrip("/")
    if scheme == "http" and not allow_insecure and not is_loopback(hostname):
        raise InputError(
            f"Refusing plain-http base URL {clean}: keys would travel unencrypted. "
            "Use https, or pass allow_insecure=True."
        )
    return clean


def check_key(key: Secret | None, name: str, source: str) -> None:
    """Refuse a key an HTTP header cannot carry (a space, a line break, a non-ASCII character)
    before it is used; the message never shows the key."""
    if key is None:
        return
    if not all(0x21 <= ord(c) <= 0x7E for c in key.get()):
        raise InputError(
            f"The {name} contains a character an HTTP header cannot carry (a space, a line "
            f"break or a non-ASCII character): check {source}. The key is not shown here."
        )
