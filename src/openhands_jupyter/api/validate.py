"""Input checks that run before any request: each failure is one readable InputError line."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import InputError

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


def check_api_version(value: str | None) -> str:
    text = (value or "auto").strip().lower()
    if text not in API_VERSIONS:
        raise InputError(f"Unknown api_version {value!r}: use one of v1, v0, auto.")
    return text


def is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure: bool = False) -> str:
    """Refuse a malformed URL, and plain http to anything but loopback unless allowed."""
    text = str(base_url or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"Base URL {base_url!r} is not an http(s) URL.")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
        raise InputError(
            f"Refusing plain-http base URL {text}: the API key would travel unencrypted. "
            "Use https, or pass allow_insecure=True."
        )
    return text
