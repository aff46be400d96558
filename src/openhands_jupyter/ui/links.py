"""Links to a conversation's pull requests, where the repository's host is known."""

from __future__ import annotations

from urllib.parse import quote

#: the web address of each provider's pull (merge) request number ``{n}`` in ``{repo}``
PULL_URLS = {
    "github": "https://github.com/{repo}/pull/{n}",
    "gitlab": "https://gitlab.com/{repo}/-/merge_requests/{n}",
    "bitbucket": "https://bitbucket.org/{repo}/pull-requests/{n}",
}


def pr_links(
    numbers: tuple[int, ...], repository: str | None, provider: str | None
) -> list[dict[str, object]]:
    """``[{"number": 42, "url": ...}]``: ``url`` is ``""`` where the host is not known (a
    self-hosted GitLab, say), and the number is shown as text."""
    template = PULL_URLS.get((provider or "").lower()) if repository else None
    out: list[dict[str, object]] = []
    for n in numbers:
        url = template.format(repo=quote(repository or "", safe="/"), n=n) if template else ""
        out.append({"number": n, "url": url})
    return out
