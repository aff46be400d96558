"""Reading a V1 conversation's events from the app server's store: forward from a cursor, the
newest first, and a walk back from the newest for servers whose timestamp filter fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .backend import EventCursor
from .errors import InvalidResponseError, OpenHandsError, ServerError, UnsupportedError
from .events import event_from_v1, oldest_first
from .ids import later, parse_time
from .models import Event
from .secrets import package_logger

log = package_logger("openhands_jupyter.api")

#: events per page of a walk back from the newest (most reads find only a few new ones)
WALK_PAGE = 25
#: a walk never reads more pages than this in one go
WALK_PAGES = 40

Call = Callable[..., Awaitable[Any]]


class V1EventStore:
    """The app server's event search for one server: which of its two paths it has and
    whether its ``timestamp__gte`` filter works (1.6's answers 500 once there are events)."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.path: str | None = None  # "new" or "old", learnt on first use
        self.filter_fails = False

    async def page(self, cid: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of the search, from the path this server has (learnt from its first JSON
        answer). Only a definite "no such route" on both paths (405, FastAPI's bare 404) makes
        it ``UnsupportedError``; a web page or a garbled body is an error to retry."""
        paths = {
            "new": (f"/api/v1/conversation/{cid}/events/search", params),
            "old": ("/api/v1/events/search", {**params, "conversation_id__eq": cid}),
        }
        order = ["old", "new"] if self.path == "old" else ["new", "old"]
        definite = True
        page_exc: OpenHandsError | None = None
        for name in order:
            url, query = paths[name]
            try:
                data = await self._call("GET", url, params=query, what="V1 events search")
            except (UnsupportedError, InvalidResponseError) as exc:
                if isinstance(exc, InvalidResponseError) and not exc.not_json:
                    raise  # a malformed answer: try again later, same path
                if exc.status_code not in (404, 405):
                    definite = False  # a web page: the web UI's, or a proxy's in trouble
                    page_exc = exc
                continue
            self.path = name
            if not isinstance(data, dict):
                raise InvalidResponseError(f"Unexpected events response: {type(data).__name__}")
            return data
        if definite:
            raise UnsupportedError("This server offers no V1 events search.", status_code=404)
        if isinstance(page_exc, InvalidResponseError):
            raise page_exc
        error = InvalidResponseError(
            "The V1 events search answered a web page instead of JSON: is the base URL right?",
            status_code=page_exc.status_code if page_exc else None,
        )
        error.not_json = True
        raise error

    async def forward(self, cid: str, cursor: EventCursor, max_pages: int = 5) -> list[Event]:
        """The events after the cursor, oldest first (``max_pages=0``: to the end)."""
        since = cursor.page_from if cursor.page_id else cursor.last_timestamp
        if since and self.filter_fails:
            return await self.walk_back(cid, cursor)
        try:
            return await self._forward(cid, cursor, since, max_pages)
        except ServerError:
            if not since:
                raise
            # the filtered search failed: read back from the newest instead; if that works,
            # this server's filter is what fails, and every later read walks back
            events = await self.walk_back(cid, cursor)
            self.filter_fails = True
            log.debug("the V1 event search's timestamp filter fails here; reading newest first")
            return events

    async def _forward(
        self, cid: str, cursor: EventCursor, since: str | None, max_pages: int
    ) -> list[Event]:
        params: dict[str, Any] = {"sort_order": "TIMESTAMP", "limit": 100}
        if since:
            params["timestamp__gte"] = since
        if cursor.page_id:
            params["page_id"] = cursor.page_id
        out: list[Event] = []
        pages = 0
        while True:
            pages += 1
            data = await self.page(cid, params)
            out.extend(_take(cursor, data.get("items", []), skip_seen=True))
            page = data.get("next_page_id")
            if not page:
                cursor.page_id = None
                break
            params = {**params, "page_id": page}
            if max_pages and pages >= max_pages:
                # the same query goes on from this page next time: no event is skipped, even
                # when more than these pages share one timestamp
                cursor.page_id, cursor.page_from = str(page), since
                break
        return out

    async def tail(
        self,
        cid: str,
        cursor: EventCursor,
        limit: int = 100,
        on_cut: Callable[[str], None] | None = None,
    ) -> list[Event]:
        """The newest ``limit`` events, oldest first; the cursor moves past them. If older
        events were left out, ``on_cut`` is given the oldest timestamp read."""
        data = await self.page(cid, {"sort_order": "TIMESTAMP_DESC", "limit": limit})
        newest = [r for r in data.get("items", []) if isinstance(r, dict)]
        items = oldest_first(newest, data.get("next_page_id"), on_cut)
        cursor.page_id = None
        return _take(cursor, items, skip_seen=False)

    async def walk_back(self, cid: str, cursor: EventCursor) -> list[Event]:
        """The events after the cursor, read newest first back to the cursor (no timestamp
        filter), returned oldest first."""
        params: dict[str, Any] = {"sort_order": "TIMESTAMP_DESC", "limit": WALK_PAGE}
        since = parse_time(cursor.last_timestamp)
        newer: list[dict[str, Any]] = []
        for _ in range(WALK_PAGES):
            data = await self.page(cid, params)
            reached = False
            for raw in data.get("items", []):
                if not isinstance(raw, dict):
                    continue
                stamp = parse_time(raw.get("timestamp"))
                if since is not None and stamp is not None and later(since, stamp):
                    reached = True
                    break
                newer.append(raw)
            page = data.get("next_page_id")
            if reached or not page:
                break
            params = {**params, "page_id": page}
        newer.reverse()
        cursor.page_id = None
        return _take(cursor, newer, skip_seen=True)


def _take(cursor: EventCursor, raws: list[Any], *, skip_seen: bool) -> list[Event]:
    """Events from raw items in order, moving the cursor past them; with ``skip_seen``, items
    at the cursor's own timestamp that it has seen are left out."""
    out: list[Event] = []
    for raw in raws:
        if not isinstance(raw, dict):
            continue
        eid = str(raw.get("id"))
        stamp = raw.get("timestamp")
        if skip_seen and stamp == cursor.last_timestamp and eid in cursor.seen_at_last:
            continue
        if isinstance(stamp, str) and stamp != cursor.last_timestamp:
            cursor.last_timestamp = stamp
            cursor.seen_at_last = set()
        cursor.seen_at_last.add(eid)
        event = event_from_v1(raw)
        if event is not None:
            out.append(event)
    return out
