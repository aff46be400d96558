"""Long histories: every event of a whole history, none lost where many share a timestamp,
and the newest first where that is what is needed (the answer, the feed's tail)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from openhands_jupyter import api
from openhands_jupyter.api.backend import EventCursor
from openhands_jupyter.api.models import ConversationInfo
from openhands_jupyter.api.v1 import V1Backend

CID = "ab" * 16


def _history(n: int, shared: range) -> list[dict[str, Any]]:
    """``n`` events; those in ``shared`` carry one timestamp; the last is the finish."""
    out = []
    for i in range(n):
        second = 1000 if i in shared else i
        stamp = (
            f"2026-01-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000"
        )
        kind = "ActionEvent" if i == n - 1 else "MessageEvent"
        event: dict[str, Any] = {
            "id": f"e{i:05d}",
            "kind": kind,
            "timestamp": stamp,
            "source": "agent",
        }
        if kind == "ActionEvent":
            event.update(action={"kind": "FinishAction", "message": "All done"}, tool_name="finish")
        else:
            event["llm_message"] = {
                "role": "assistant",
                "content": [{"type": "text", "text": f"step {i}"}],
            }
        out.append(event)
    return sorted(out, key=lambda e: (e["timestamp"], e["id"]))


def _server(events: list[dict[str, Any]], seen: list[dict[str, str]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        seen.append(q)
        items = list(events)
        if q.get("timestamp__gte"):
            items = [e for e in items if e["timestamp"] >= q["timestamp__gte"]]
        if q.get("sort_order") == "TIMESTAMP_DESC":
            items.reverse()
        limit = int(q.get("limit", "100"))
        offset = int(q.get("page_id") or 0)
        page = items[offset : offset + limit]
        nxt = str(offset + limit) if offset + limit < len(items) else None
        return httpx.Response(200, json={"items": page, "next_page_id": nxt})

    return httpx.MockTransport(handler)


def _backend(events: list[dict[str, Any]], seen: list[dict[str, str]]) -> V1Backend:
    return V1Backend(api.Transport("https://x.invalid", transport=_server(events, seen)))


def test_a_whole_history_has_every_event_and_ends_with_the_finish() -> None:
    events = _history(3500, range(0))
    seen: list[dict[str, str]] = []
    info = ConversationInfo(id=CID, status="finished")
    got = asyncio.run(_backend(events, seen).events(info, EventCursor(), max_pages=0))
    assert [e.id for e in got] == [e["id"] for e in events]
    assert got[-1].type == "finish" and got[-1].text == "All done"


def test_a_tail_follows_past_more_events_than_pages_sharing_one_timestamp() -> None:
    events = _history(1400, range(200, 1100))  # 900 events share one timestamp
    seen: list[dict[str, str]] = []
    backend = _backend(events, seen)
    info = ConversationInfo(id=CID, status="running")
    cursor = EventCursor()
    got: list[str] = []
    for _ in range(40):  # one read per tick, five pages each
        got.extend(e.id for e in asyncio.run(backend.events(info, cursor)))
        if got and got[-1] == events[-1]["id"]:
            break
    assert got == [e["id"] for e in events]  # every one, once, in order


def test_the_newest_come_first_when_attaching() -> None:
    events = _history(2000, range(0))
    seen: list[dict[str, str]] = []
    backend = _backend(events, seen)
    info = ConversationInfo(id=CID, status="finished")
    cursor = EventCursor()
    tail = asyncio.run(backend.events_tail(info, cursor))
    assert len(seen) == 1 and seen[0]["sort_order"] == "TIMESTAMP_DESC"
    assert [e.id for e in tail] == [e["id"] for e in events[-100:]]
    assert tail[-1].type == "finish"
    # and the incremental read goes on from there, with nothing again
    events.append({**events[-1], "id": "e99999", "timestamp": "2026-01-01T23:59:59.000000"})
    more = asyncio.run(backend.events(info, cursor))
    assert [e.id for e in more] == ["e99999"]
