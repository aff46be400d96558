"""A scripted OpenAI-compatible LLM on 127.0.0.1 for a real OpenHands server.

The last user message picks the script with a marker:

- no marker: call ``finish`` at once;
- ``[llm:command]``: run ``echo hello-from-fake-llm`` in the terminal, then finish;
- ``[llm:long=N]``: run a command that takes N seconds (``sleep N``), then finish;
- ``[llm:plan]``: write a plan of two tasks with the task tracker first (``PLAN``: the first
  under way), and again with both done before finishing; ``[llm:edit]``: create a file with
  the file editor; ``[llm:view]``: view that file;
- ``[llm:report]``: write a table (``REPORT_PATH``, ``REPORT_CSV``) and notes in Markdown
  (``NOTES_PATH``) with the file editor;
- ``[llm:fail]``: answer 401 (a provider that refuses the key): the agent stops with an error;
- ``[llm:slow=N]``: wait N seconds before every answer (the conversation stays running);
- ``[llm:many=N]``: run N short commands (a run long enough to push its state change out of
  the newest events);
- ``[llm:home]``: set the git user globally and print ``HOME=<its home>`` (what an agent
  does to the home it is given);
- ``[llm:git]``: make the working directory a git repository with ``notes.txt`` committed,
  then change ``notes.txt`` and create ``added.txt`` with the file editor (``GIT_CHANGES``);
  with ``[llm:edits=N]`` it then creates N more files there, one per step.

The finish message is ``Done: <first line of the user message, markers removed>``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openhands_jupyter.sim.server import _Served

from .tags import run_tag

#: the plan ``[llm:plan]`` writes, and its tasks' statuses the first time
PLAN = ("Look around", "Report back")
PLAN_START = ("in_progress", "todo")


def remove_files() -> None:
    """Remove what the scripted agent wrote (at the end of the test session, or of any other
    process that used it, such as a benchmark)."""
    shutil.rmtree(FILES, ignore_errors=True)


atexit.register(remove_files)


MARKER = re.compile(r"\[llm:([a-z_]+)(?:=([0-9.]+))?\]")
COMMAND = "echo hello-from-fake-llm"
COMMAND_OUTPUT = "hello-from-fake-llm"
TITLE = "Title from the fake LLM"
HOME_COMMAND = (
    "git config --global user.name openhands && git config --global user.email "
    'openhands@all-hands.dev && echo "HOME=$HOME"'
)
#: where the scripted agent writes its files: a folder of this test process's own, removed
#: when its session ends (``remove_files``)
FILES = tempfile.mkdtemp(prefix=f"ohj-fake-llm-{run_tag()}-")
EDITED_PATH = f"{FILES}/edited-{uuid.uuid4().hex[:8]}.txt"
REPORT_PATH = f"{FILES}/report-{uuid.uuid4().hex[:8]}.csv"
REPORT_CSV = "name,score\nalpha,1\nbeta,2\n"
NOTES_PATH = f"{FILES}/notes-{uuid.uuid4().hex[:8]}.md"
NOTES_MD = '# Findings\n\n<img src=x onerror="window.__ohj_notes = 1">\n'

USAGE = {"prompt_tokens": 1200, "completion_tokens": 34, "total_tokens": 1234}
#: what the server's settings charge per token, so that a run has a cost
COST_PER_TOKEN = {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015}
GIT_SETUP = (
    "echo \"WORKDIR=$(pwd)\"; git init -q . && printf 'one\\ntwo\\n' > notes.txt && "
    "git add notes.txt && git -c user.email=fake@llm -c user.name=fake commit -qm init"
)
#: what ``[llm:git]`` leaves changed: path -> (status, added, removed). With no upstream agent
#: server 1.34 compares with the empty tree: the committed file counts as added too.
GIT_CHANGES = {"added.txt": ("added", 1, 0), "notes.txt": ("added", 3, 0)}
#: the same on agent servers that compare a repository with no remote with its HEAD (1.58)
GIT_CHANGES_FROM_HEAD = {"added.txt": ("added", 1, 0), "notes.txt": ("updated", 2, 1)}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def finish_message(task: str) -> str:
    """The answer the fake LLM gives for a task: ``Done: <first line without markers>``."""
    lines = [" ".join(MARKER.sub("", line).split()) for line in task.splitlines()]
    first = next((line for line in lines if line), "")
    return f"Done: {first[:80]}" if first else "Done."


RESULT = "EXECUTION RESULT of ["
TASK_IN_EXAMPLE = re.compile(r"NEW TASK DESCRIPTION -+\n(.*?)\n-+ END OF NEW TASK", re.S)


def task_and_steps(messages: list[dict[str, Any]]) -> tuple[str, int]:
    """The user's latest request (not a tool result, not an in-context example around it) and
    how many steps the agent has taken since."""
    last = -1
    for i, m in enumerate(messages):
        text = _text(m.get("content")).lstrip()
        # tool results and context the server adds (<RUNTIME_INFORMATION>…) are not requests
        if m.get("role") == "user" and not text.startswith((RESULT, "<")):
            last = i
    task = _text(messages[last].get("content")) if last >= 0 else ""
    inner = TASK_IN_EXAMPLE.search(task)
    if inner:
        task = inner.group(1)
    steps = sum(1 for m in messages[last + 1 :] if m.get("role") == "assistant")
    return task.strip(), steps


def working_dir(messages: list[dict[str, Any]]) -> str:
    """The directory ``GIT_SETUP`` printed (``WORKDIR=...``) in a tool result."""
    for m in reversed(messages):
        found = re.search(r"WORKDIR=(/\S+)", _text(m.get("content")))
        if found:
            return found.group(1).rstrip("/")
    return "/nonexistent"


def plan(
    messages: list[dict[str, Any]], tools: list[str] | None = None
) -> tuple[dict[str, Any] | None, float]:
    """The next tool call for this conversation, and how long to wait before answering.
    ``tools`` are the tool names offered (V0 calls the shell ``execute_bash``)."""
    task, steps_done = task_and_steps(messages)
    markers = {m.group(1): m.group(2) for m in MARKER.finditer(task)}
    delay = float(markers.get("slow") or 0)
    shell = "execute_bash" if tools and "execute_bash" in tools else "terminal"
    script: list[dict[str, Any]] = []
    if "plan" in markers:
        tasks = [
            {"title": t, "notes": "", "status": s} for t, s in zip(PLAN, PLAN_START, strict=True)
        ]
        script.append(
            {"name": "task_tracker", "arguments": {"command": "plan", "task_list": tasks}}
        )
    if "command" in markers:
        script.append({"name": shell, "arguments": {"command": COMMAND, "security_risk": "LOW"}})
    if "home" in markers:
        script.append(
            {"name": shell, "arguments": {"command": HOME_COMMAND, "security_risk": "LOW"}}
        )
    if "long" in markers:
        seconds = float(markers.get("long") or 20)
        script.append(
            {
                "name": shell,
                "arguments": {
                    "command": f"sleep {seconds:g} && echo slept-{seconds:g}",
                    "timeout": seconds + 60,
                    "security_risk": "LOW",
                },
            }
        )
    for i in range(int(markers.get("many") or 0)):
        script.append(
            {"name": shell, "arguments": {"command": f"echo step-{i}", "security_risk": "LOW"}}
        )
    if "git" in markers:
        script.append({"name": shell, "arguments": {"command": GIT_SETUP, "security_risk": "LOW"}})
        if steps_done >= 1:
            root = working_dir(messages)
            edit = {
                "command": "str_replace",
                "path": f"{root}/notes.txt",
                "old_str": "two",
                "new_str": "2\nthree",
                "security_risk": "MEDIUM",
            }
            create = {
                "command": "create",
                "path": f"{root}/added.txt",
                "file_text": "new file\n",
                "security_risk": "LOW",
            }
            script.append({"name": "file_editor", "arguments": edit})
            script.append({"name": "file_editor", "arguments": create})
            for i in range(int(markers.get("edits") or 0)):
                more = {**create, "path": f"{root}/more_{i}.txt", "file_text": f"file {i}\n"}
                script.append({"name": "file_editor", "arguments": more})
        else:
            # placeholders: the steps are known once the first one has printed the directory
            script += [{"name": "file_editor", "arguments": {}}] * (
                2 + int(markers.get("edits") or 0)
            )
    if "edit" in markers:
        args = {"command": "create", "path": EDITED_PATH, "file_text": "hello from the fake LLM\n"}
        script.append({"name": "file_editor", "arguments": {**args, "security_risk": "LOW"}})
    if "report" in markers:
        for path, text in ((REPORT_PATH, REPORT_CSV), (NOTES_PATH, NOTES_MD)):
            args = {"command": "create", "path": path, "file_text": text, "security_risk": "LOW"}
            script.append({"name": "file_editor", "arguments": args})
    if "view" in markers:
        args = {"command": "view", "path": EDITED_PATH, "security_risk": "LOW"}
        script.append({"name": "file_editor", "arguments": args})
    if "plan" in markers:
        tasks = [{"title": t, "notes": "", "status": "done"} for t in PLAN]
        script.append(
            {"name": "task_tracker", "arguments": {"command": "plan", "task_list": tasks}}
        )
    script.append({"name": "finish", "arguments": {"message": finish_message(task)}})
    if steps_done >= len(script):
        return script[-1], delay
    return script[steps_done], delay


class FakeLLM:
    """Serve the fake LLM in a background thread; ``url`` is its OpenAI base URL (``/v1``)."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.calls: list[tuple[float, str, str]] = []
        """(monotonic time, task, tool) of every tool call handed to an agent."""
        self._served: _Served | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> Starlette:
        async def models(request: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            messages = body.get("messages") or []
            model = body.get("model") or "fake"
            system = _text(messages[0].get("content")) if messages else ""
            tools = [
                str((t.get("function") or {}).get("name"))
                for t in body.get("tools") or []
                if isinstance(t, dict)
            ]
            if not tools and "<function=" not in system:
                # a call without tools: the server asks for a title (or a summary)
                return _reply(model, body, {"role": "assistant", "content": TITLE})
            if "[llm:fail]" in task_and_steps(messages)[0]:
                # a provider that refuses the key: the agent stops with an error
                error = {
                    "message": "Incorrect API key provided: fake-key.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
                return JSONResponse({"error": error}, status_code=401)
            call, delay = plan(messages, tools or ["execute_bash", "finish"])
            if delay:
                await asyncio.sleep(delay)
            assert call is not None
            self.calls.append((time.monotonic(), task_and_steps(messages)[0], call["name"]))
            if not tools:
                # the prompt asks for calls written as text (V0 with a model it does not know)
                params = "".join(
                    f"<parameter={k}>{v}</parameter>\n" for k, v in call["arguments"].items()
                )
                text = f"<function={call['name']}>\n{params}</function>"
                return _reply(model, body, {"role": "assistant", "content": text})
            tool_call = {
                "id": "call_" + uuid.uuid4().hex[:12],
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
            }
            return _reply(
                model, body, {"role": "assistant", "content": None, "tool_calls": [tool_call]}
            )

        return Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/v1/chat/completions", completions, methods=["POST"]),
                Route("/chat/completions", completions, methods=["POST"]),
            ]
        )

    def start(self) -> FakeLLM:
        self._served = _Served(self.app(), 0, "fake-llm")
        self.port = self._served.port
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()


def _reply(model: str, body: dict[str, Any], message: dict[str, Any]) -> Response:
    created = int(time.time())
    cid = "chatcmpl-" + uuid.uuid4().hex[:12]
    reason = "tool_calls" if message.get("tool_calls") else "stop"
    if not body.get("stream"):
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": USAGE,
            }
        )

    async def chunks() -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
        yield chunk(delta)
        yield chunk({}, reason, usage=USAGE)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")
