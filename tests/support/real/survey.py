"""The same questions, asked of any OpenHands V1 server: every route the client uses, unknown
routes, a deleted conversation and the error answers. Each answer is reduced to its shape
(status code, JSON key sets, event kinds) so that the simulator can be held to the real server."""

from __future__ import annotations

import json
import time
import uuid
from functools import partial
from typing import Any

import httpx
from websockets.sync.client import connect

P = "/api/v1/app-conversations"
ZERO = "0" * 32

# the agent server's own routes are asked directly: as patient as the app's client (60 s; an
# /interrupt may hold its answer for seconds while a run winds down, longer on a busy machine)
_get = partial(httpx.get, timeout=60)
_post = partial(httpx.post, timeout=60)


def shape(value: Any) -> Any:
    """A JSON value's structure: key sets for objects (one level), item shapes for lists."""
    if isinstance(value, dict):
        return sorted(value)
    if isinstance(value, list):
        items = [v for v in value if v is not None]
        return ["list", shape(items[0]) if items else None, any(v is None for v in value)]
    return type(value).__name__


def answer(r: httpx.Response) -> tuple[Any, ...]:
    ctype = r.headers.get("content-type", "").split(";")[0]
    if "json" in ctype:
        return (r.status_code, shape(r.json()))
    return (r.status_code, ctype)


def event_kinds(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each kind of event (with its tool or state key) and the keys such an event carries."""
    out: dict[str, list[str]] = {}
    for item in items:
        kind = str(item.get("kind"))
        detail = item.get("tool_name") or item.get("key") or ""
        if kind == "ConversationStateUpdateEvent" and detail not in (
            "execution_status",
            "stats",
            "full_state",
            "last_user_message_id",
        ):
            detail = "other"
        keys = sorted(item)
        for inner in ("action", "observation"):
            if isinstance(item.get(inner), dict):
                keys.append(f"{inner}: {' '.join(sorted(item[inner]))}")
        out[f"{kind}:{detail}" if detail else kind] = keys
    return out


class Survey:
    """Runs the questions against one server (``headers``: its app-server key)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        # a connection per request: a kept-alive one the server closes as it is reused would
        # end a survey with "Server disconnected" (seen on a busy machine), which is no answer
        self.c = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.headers = headers
        self.answers: dict[str, Any] = {}

    def ask(self, name: str, r: httpx.Response) -> httpx.Response:
        self.answers[name] = answer(r)
        return r

    def start(self, text: str, **extra: Any) -> dict[str, Any]:
        body = {"initial_message": {"role": "user", "content": [{"type": "text", "text": text}]}}
        r = self.ask("start", self.c.post(P, json={**body, **extra}))
        task = r.json()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            r = self.ask("start-tasks", self.c.get(f"{P}/start-tasks", params={"ids": task["id"]}))
            task = r.json()[0]
            if task["status"] in ("READY", "ERROR"):
                break
            time.sleep(0.3)
        assert task["status"] == "READY", task
        return task

    def conversation(self, cid: str) -> dict[str, Any]:
        r = self.ask("conversations", self.c.get(P, params={"ids": cid}))
        [info] = r.json()
        return info

    def wait(self, cid: str, statuses: tuple[str, ...] = ("finished",)) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        seen = None
        while time.monotonic() < deadline:
            info = self.conversation(cid)
            if info and info["execution_status"] in statuses:
                return info
            seen = (info or {}).get("execution_status")
            time.sleep(0.3)
        raise AssertionError(f"{cid} never reached {statuses} (last seen: {seen})")

    def agent(self, info: dict[str, Any]) -> tuple[str, dict[str, str]]:
        base = info["conversation_url"].rsplit("/api/conversations/", 1)[0]
        return base, {"X-Session-API-Key": info["session_api_key"]}

    def run(self, task: str, busy_task: str) -> dict[str, Any]:
        """Every question, in an order that leaves the pause of the shared sandbox to last.
        ``task`` runs a command and finishes; ``busy_task`` keeps its agent working a while."""
        c = self.c
        a = self.start(task)
        cid = a["app_conversation_id"]
        info = self.wait(cid)
        self.answers["conversation.sandbox_status"] = info["sandbox_status"]
        self.ask("start-tasks/search", c.get(f"{P}/start-tasks/search", params={"limit": 2}))
        self.ask("search", c.get(f"{P}/search", params={"limit": 2}))
        self.ask(
            "search by sandbox",
            c.get(f"{P}/search", params={"sandbox_id__eq": info["sandbox_id"], "limit": 5}),
        )
        self.ask("count", c.get(f"{P}/count"))
        # the app server's store is fed in batches: its events lag; the agent server's do not
        base, keys = self.agent(info)
        r = self.ask(
            "agent events",
            _get(f"{base}/api/conversations/{cid}/events/search", headers=keys),
        )
        self.answers["agent event kinds"] = event_kinds(r.json()["items"])
        self.ask("app events", c.get(f"/api/v1/conversation/{cid}/events/search"))
        self.ask(
            "old events path",
            c.get("/api/v1/events/search", params={"conversation_id__eq": cid}),
        )
        self.ask(
            "agent events, wrong key",
            _get(
                f"{base}/api/conversations/{cid}/events/search",
                headers={"X-Session-API-Key": "wrong"},
            ),
        )
        self.ask(
            "agent conversation",
            _get(f"{base}/api/conversations/{cid}", headers=keys),
        )
        self.answers["socket first frame"] = self.first_frame(base, cid, keys)
        self.ask("sandboxes", c.get("/api/v1/sandboxes", params={"id": info["sandbox_id"]}))
        self.ask("patch title", c.patch(f"{P}/{cid}", json={"title": "Surveyed"}))
        self.ask(
            "send-message",
            c.post(f"{P}/{cid}/send-message", json=message("Once more")),
        )
        self.wait(cid)
        download = c.get(f"{P}/{cid}/download")
        self.answers["download"] = (download.status_code, download.headers.get("content-type"))
        # stop one agent, and run it again, on its agent server
        b = self.start(busy_task)
        bid = b["app_conversation_id"]
        binfo = self.wait(bid, ("running",))
        bbase, bkeys = self.agent(binfo)
        # the message asks for more of the same work: a bare one ends the run at once (the
        # fake model answers the newest request), and on a busy machine before the pause lands
        self.ask(
            "agent message",
            _post(
                f"{bbase}/api/conversations/{bid}/events", json=message(busy_task), headers=bkeys
            ),
        )
        self.ask("agent pause", _post(f"{bbase}/api/conversations/{bid}/pause", headers=bkeys))
        self.answers["paused execution"] = self.wait(bid, ("paused",))["sandbox_status"]
        # the agent server refuses a run (409) until the run the pause ended has wound down
        # (1.58 holds it while its last events are delivered: 15 s when the app refuses them)
        self.ask("agent run", self.run_again(f"{bbase}/api/conversations/{bid}/run", bkeys))
        # an interrupt stops the step under way at once; the agent runs again after it
        self.wait(bid, ("running",))
        self.ask(
            "agent interrupt",
            _post(f"{bbase}/api/conversations/{bid}/interrupt", headers=bkeys),
        )
        self.answers["interrupted execution"] = self.wait(bid, ("paused",))["execution_status"]
        self.ask(
            "agent run after interrupt",
            self.run_again(f"{bbase}/api/conversations/{bid}/run", bkeys),
        )
        self.ask(
            "agent interrupt unknown",
            _post(f"{bbase}/api/conversations/{uuid.UUID(ZERO)}/interrupt", headers=bkeys),
        )
        # unknown routes and bad input
        self.ask("unknown GET", c.get("/api/v1/no-such-route"))
        self.ask("unknown POST", c.post("/api/v1/no-such-route", json={}))
        self.ask("V0 list on a V1 server", c.get("/api/conversations"))
        self.ask("bad ids", c.get(P, params={"ids": "xyz"}))
        self.ask("100 ids", c.get(P, params={"ids": [uuid.uuid4().hex for _ in range(100)]}))
        self.ask(
            "101 start tasks",
            c.get(f"{P}/start-tasks", params={"ids": [uuid.uuid4().hex for _ in range(101)]}),
        )
        self.ask("delete bad id", c.delete(f"{P}/xyz"))
        self.ask("delete unknown", c.delete(f"{P}/{ZERO}"))
        self.ask("send to unknown", c.post(f"{P}/{ZERO}/send-message", json=message("x")))
        self.ask("unknown conversation", c.get(P, params={"ids": ZERO}))
        self.ask("wrong app key", _get(f"{c.base_url}{P}/count"))
        # a deleted conversation
        self.ask("delete", c.delete(f"{P}/{cid}"))
        time.sleep(1.0)
        self.ask("deleted: get", c.get(P, params={"ids": cid}))
        self.ask("deleted: send", c.post(f"{P}/{cid}/send-message", json=message("x")))
        self.ask("deleted: delete", c.delete(f"{P}/{cid}"))
        self.ask("deleted: events", c.get(f"/api/v1/conversation/{cid}/events/search"))
        # last: pausing the sandbox stops every conversation in it
        self.ask("sandbox pause", c.post(f"/api/v1/sandboxes/{binfo['sandbox_id']}/pause"))
        paused = self.wait(bid, ("finished", "paused", None))  # type: ignore[arg-type]
        self.answers["after sandbox pause"] = paused["sandbox_status"]
        self.ask("send while paused", c.post(f"{P}/{bid}/send-message", json=message("x")))
        self.ask("sandbox resume", c.post(f"/api/v1/sandboxes/{binfo['sandbox_id']}/resume"))
        self.ask("sandbox pause unknown", c.post("/api/v1/sandboxes/nosuchsandbox/pause"))
        return self.answers

    @staticmethod
    def run_again(url: str, keys: dict[str, str]) -> httpx.Response:
        deadline = time.monotonic() + 45
        while True:
            r = _post(url, headers=keys)
            if r.status_code != 409 or time.monotonic() > deadline:
                return r
            time.sleep(1.0)

    def first_frame(self, base: str, cid: str, keys: dict[str, str]) -> Any:
        url = base.replace("http", "ws", 1) + f"/sockets/events/{uuid.UUID(cid)}"
        with connect(url) as ws:
            ws.send(json.dumps({"type": "auth", "session_api_key": keys["X-Session-API-Key"]}))
            frame = json.loads(ws.recv(timeout=10))
        return [frame.get("kind"), frame.get("key"), sorted(frame.get("value") or {})[:0]]

    def close(self) -> None:
        self.c.close()


def message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}], "run": True}
