"""Transport behaviour: auth headers, retries with backoff, 429 waits, and no start sent twice."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from openhands_jupyter import api
from openhands_jupyter.api.backend import StartRequest
from openhands_jupyter.api.secrets import Secret
from openhands_jupyter.api.v1 import V1Backend


def _json(code: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(code, json=body, headers=headers)


async def test_bearer_and_session_headers_are_sent() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return _json(200, 3)

    t = api.Transport(
        "https://x.invalid",
        api_key=Secret("k-123456"),
        session_api_key=Secret("s-654321"),
        transport=httpx.MockTransport(handler),
    )
    assert await t.request("GET", "/api/v1/app-conversations/count") == 3
    assert seen[0]["authorization"] == "Bearer k-123456"
    assert seen[0]["x-session-api-key"] == "s-654321"
    assert "k-123456" not in repr(t)
    await t.aclose()


async def test_get_is_retried_on_503_and_connect_errors() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused")
        if calls == 2:
            return _json(503, {"detail": "busy"})
        return _json(200, [])

    t = api.Transport("https://x.invalid", transport=httpx.MockTransport(handler))
    started = time.monotonic()
    assert await t.request("GET", "/api/v1/app-conversations", params={"ids": ["a"]}) == []
    assert calls == 3
    assert time.monotonic() - started >= 0.25 + 0.5  # two backoff sleeps (half-jittered)
    await t.aclose()


@pytest.mark.parametrize(
    "dropped", [httpx.ReadError("closed"), httpx.RemoteProtocolError("disconnected")]
)
async def test_a_dropped_connection_gets_one_fresh_try_even_without_retries(
    dropped: Exception,
) -> None:
    # some servers close a kept-alive connection after an error answer: the next request on it
    # fails before any answer. A GET goes once more at once; a POST never does.
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) % 2 == 1:
            raise dropped
        return _json(200, [])

    t = api.Transport("https://x.invalid", transport=httpx.MockTransport(handler))
    assert await t.request("GET", "/api/v1/app-conversations", retries=0) == []
    assert calls == ["GET", "GET"]
    calls.clear()
    with pytest.raises(api.APIConnectionError, match="failed"):
        await t.request("POST", "/api/v1/app-conversations", json_body={}, retries=0)
    assert calls == ["POST"]
    await t.aclose()


async def test_start_is_never_sent_twice_on_a_timeout_or_5xx() -> None:
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        posts += 1
        raise httpx.ReadTimeout("read timed out")

    backend = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    with pytest.raises(api.APIConnectionError, match="Timed out"):
        await backend.start(StartRequest("task"))
    assert posts == 1

    posts = 0

    def handler503(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        posts += 1
        return _json(503, {"detail": "unavailable"})

    backend = V1Backend(
        api.Transport("https://x.invalid", transport=httpx.MockTransport(handler503))
    )
    with pytest.raises(api.ServerError):
        await backend.start(StartRequest("task"))
    assert posts == 1


async def test_start_is_retried_when_the_connection_was_never_made() -> None:
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        posts += 1
        if posts == 1:
            raise httpx.ConnectError("refused")
        return _json(200, {"id": "cbe5366a03e841069ca04ae4eb0ba002", "status": "WORKING"})

    backend = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    task = await backend.start(StartRequest("task"))
    assert task.status == "WORKING" and posts == 2


async def test_429_waits_as_the_server_says() -> None:
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            return _json(429, {"error": "Rate limit exceeded"}, {"Retry-After": "0.6"})
        return _json(200, 1)

    t = api.Transport("https://x.invalid", transport=httpx.MockTransport(handler))
    assert await t.request("GET", "/api/v1/app-conversations/count") == 1
    assert stamps[1] - stamps[0] >= 0.6
    await t.aclose()


async def test_after_a_429_no_other_request_goes_out_before_the_wait_is_over() -> None:
    # the server asked this client to wait: a request made meanwhile on another task waits
    # too, instead of earning another 429 (or counting against the server's patience)
    seen: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, time.monotonic()))
        if len(seen) == 1:
            return _json(429, {"error": "Rate limit exceeded"}, {"Retry-After": "0.5"})
        return _json(200, [1] if request.url.path == "/api/stream" else 1)

    t = api.Transport("https://x.invalid", transport=httpx.MockTransport(handler))
    first = asyncio.ensure_future(t.request("GET", "/api/first"))
    while not seen:
        await asyncio.sleep(0.01)
    limited_at = seen[0][1]
    await asyncio.sleep(0.05)
    assert await t.request("GET", "/api/second") == 1
    assert await first == 1
    later = {path: at - limited_at for path, at in seen[1:]}
    assert later["/api/second"] >= 0.5 and later["/api/first"] >= 0.5, later
    # a start streamed while the server's wait runs waits for it too
    seen.clear()
    again = asyncio.ensure_future(t.request("GET", "/api/first"))
    while not seen:
        await asyncio.sleep(0.01)
    limited_at = seen[0][1]
    assert [x async for x in t.stream_json_array("POST", "/api/stream")] == [1]
    await again
    assert dict(seen)["/api/stream"] - limited_at >= 0.5, seen
    await t.aclose()


async def test_concurrency_limit_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _json(
            429,
            {
                "detail": {
                    "error": "CONCURRENCY_LIMIT_REACHED",
                    "message": "limit",
                    "limit": 3,
                    "current": 3,
                }
            },
        )

    backend = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    with pytest.raises(api.ConcurrencyLimitError):
        await backend.start(StartRequest("task"))
    assert calls == 1


async def test_stream_start_is_parsed_piece_by_piece() -> None:
    body = (
        b'[\n{"id":"13ac0000000000000000000000000000","status":"WORKING"},\n'
        b'{"id":"13ac0000000000000000000000000000","status":"WAITING_FOR_SANDBOX","sandbox_id":"sb"},\n'
        b'{"id":"13ac0000000000000000000000000000","status":"READY",'
        b'"app_conversation_id":"660e0000000000000000000000000000"}]'
    )

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks(), headers={"content-type": "application/json"})

    backend = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    phases = [t.status async for t in backend.stream_start(StartRequest("task"))]
    assert phases == ["WORKING", "WAITING_FOR_SANDBOX", "READY"]


async def test_events_fall_back_to_the_older_path_and_remember_it() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.startswith("/api/v1/conversation/"):
            return httpx.Response(200, text="<html></html>", headers={"content-type": "text/html"})
        return _json(200, {"items": [], "next_page_id": None})

    backend = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    info = api.ConversationInfo(id="660e0000000000000000000000000000", status="running")
    await backend.events(info, api.EventCursor())
    await backend.events(info, api.EventCursor())
    assert paths == [
        "/api/v1/conversation/660e0000000000000000000000000000/events/search",
        "/api/v1/events/search",
        "/api/v1/events/search",
    ]


async def test_a_failing_timestamp_filter_turns_reads_newest_first() -> None:
    # 1.6's V1 event store answers 500 to timestamp__gte: the events after the cursor are
    # read from the newest back to it, once that works, for every later read too
    stamps = [f"2026-11-29T10:00:0{i}.000001" for i in range(6)]
    items = [
        {"id": f"e{i}", "timestamp": s, "kind": "MessageEvent", "source": "agent"}
        for i, s in enumerate(stamps)
    ]
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        seen.append(q)
        if "timestamp__gte" in q:
            return _json(500, {"detail": "Internal Server Error"})
        order = list(reversed(items)) if q.get("sort_order") == "TIMESTAMP_DESC" else items
        start = int(q.get("page_id") or 0)
        limit = int(q["limit"])
        page = order[start : start + limit]
        more = start + limit < len(order)
        return _json(200, {"items": page, "next_page_id": str(start + limit) if more else None})

    store = V1Backend(api.Transport("https://x.invalid", transport=httpx.MockTransport(handler)))
    info = api.ConversationInfo(id="660e0000000000000000000000000000", status="running")
    cursor = api.EventCursor(last_timestamp=stamps[1], seen_at_last={"e1"})
    got = await store.events(info, cursor)
    assert [e.id for e in got] == ["e2", "e3", "e4", "e5"]
    assert store.store.filter_fails and cursor.last_timestamp == stamps[5]
    seen.clear()
    assert await store.events(info, cursor) == []  # nothing new: one page, no filter
    assert len(seen) == 1 and "timestamp__gte" not in seen[0]
