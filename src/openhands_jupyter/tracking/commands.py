"""The one table of commands that steer a conversation: what each sends to the server, which
status allows it, what the server must show for it to count as done, and how it is labelled
while under way. The widget, the panel, ``Conversation``, a script's progress lines and the
cost cap all go through it (:meth:`Tracker.command`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api import status as st
from ..api.backend import Backend
from ..api.models import ConversationInfo, Event

#: what a command's call gets besides the backend and the conversation: its text (a message,
#: a reason) and the ids of the actions it answers
Call = Callable[[Backend, ConversationInfo, "Args"], Awaitable[Any]]


@dataclass(frozen=True)
class Args:
    text: str = ""
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """One command. ``allowed_by`` names the :class:`~openhands_jupyter.api.status.Rules` flag
    that allows it (``None``: any status once the conversation has an id)."""

    name: str
    #: the label of its button (``None``: no button of its own)
    button: str | None
    #: where the button is: ``bar`` (the card's and the panel's row of buttons), ``approval``
    #: (beside the actions waiting for approval), ``input`` (beside the message box)
    place: str
    #: shown while it is under way
    doing: str
    allowed_by: str | None
    #: the server calls it makes, per API generation (what the docs and the README say)
    calls: Mapping[str, str]
    #: what the server must show for it to count as done, in words
    done_when: str
    call: Call
    #: the status it leads to, shown once the server's events confirm it
    leads_to: str
    #: events that confirm it (the server's own evidence), given the command under way
    evidence: Callable[[Under, Event], bool] = field(default=lambda under, event: False)
    #: a new run begins: the previous answer no longer stands, and it is followed again
    runs_again: bool = False
    #: a queued launch is cancelled instead (nothing was sent to the server yet)
    cancels_queued: bool = False
    #: a timeout waiting for the server's answer leaves it under way rather than failed (the
    #: server has the request; its evidence decides)
    patient: bool = False
    #: done as soon as the server accepts it (there is nothing further to watch for)
    done_on_answer: bool = False
    #: sent again while the server shows no sign of it and what it answers still waits (an
    #: agent server acknowledges an approval it drops when the run that stopped for it is
    #: still winding down)
    resend: bool = False
    #: the server shows the text sent (a message): until then nothing answers it
    echoes: bool = False
    #: the longest text it carries (a rejection's reason is read by the agent as a message)
    max_text: int | None = None
    #: the text it carries when none is given
    default_text: str = ""
    #: the button's style (``danger``, ``primary`` or ``""``)
    style: str = ""
    #: what to say when the status does not allow it (by status, else ``refused``)
    refused: str = "not now"
    refusals: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Under:
    """A command sent and not yet confirmed by the server."""

    command: Command
    #: the status when it was sent: a state the server shows that is still this one may
    #: predate the command, and never counts as its outcome
    baseline: str
    #: the tracker's clock when its request went out
    since: float
    args: Args = Args()
    #: the server has answered the request
    answered: bool = False
    #: status answers since then that showed no change
    polls: int = 0
    #: where it came from (``"cost cap"``), for what the widget says
    origin: str = ""
    #: the newest event's server time when it went out: older events never confirm it
    server_time: str | None = None
    #: set once it is done (confirmed, given up on, or failed): a command sent meanwhile waits
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: how often it was sent again for want of any sign of it
    resent: int = 0

    @property
    def doing(self) -> str:
        return self.command.doing


# -- the calls ---------------------------------------------------------------------------------
async def _stop(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.stop(info)


async def _resume(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.resume(info)


async def _send(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.send(info, args.text)


async def _approve(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.respond(info, True, args.text)


async def _reject(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.respond(info, False, args.text)


async def _delete(backend: Backend, info: ConversationInfo, args: Args) -> None:
    await backend.delete(info.id)


async def _pause_sandbox(backend: Backend, info: ConversationInfo, args: Args) -> list[str]:
    return await backend.pause_sandbox(info)


# -- the evidence --------------------------------------------------------------------------------
def _stopped(under: Under, event: Event) -> bool:
    # the agent server's PauseEvent / InterruptEvent
    return event.kind in ("PauseEvent", "InterruptEvent")


def _answered(under: Under, event: Event) -> bool:
    """An observation (or an error) for one of the actions answered."""
    return (event.raw or {}).get("action_id") in under.args.ids


def _rejected(under: Under, event: Event) -> bool:
    return event.type == "rejected" and _answered(under, event)


def _echoed(under: Under, event: Event) -> bool:
    """The server shows the message sent."""
    return (
        event.type == "message"
        and event.source == "user"
        and " ".join(event.text.split())[:200] == " ".join(under.args.text.split())[:200]
    )


#: the longest reason a rejection carries (the agent reads it as a message)
MAX_REASON = 2000
WAITS = (
    "it waits for your approval: reject() refuses the action and stops the agent, approve() runs it"
)

STOP = Command(
    name="stop",
    button="Stop",
    place="bar",
    doing="stopping…",
    allowed_by="stop",
    calls={
        "v1": "agent server: POST /api/conversations/{id}/interrupt (POST …/pause where "
        "it has no /interrupt)",
        "v0": "POST /api/conversations/{id}/stop",
    },
    done_when="the agent's state is paused (a state update or a PauseEvent / "
    "InterruptEvent), or it stopped working by itself",
    call=_stop,
    leads_to=st.PAUSED,
    evidence=_stopped,
    cancels_queued=True,
    patient=True,
    style="danger",
    refused="there is no running agent to stop",
    refusals={st.WAITING: WAITS},
)
RESUME = Command(
    name="resume",
    button="Resume",
    place="bar",
    doing="resuming…",
    allowed_by="resume",
    calls={
        "v1": "agent server: POST /api/conversations/{id}/run, or POST "
        "/api/v1/sandboxes/{sandbox}/resume for a paused sandbox",
        "v0": "POST /api/conversations/{id}/start",
    },
    done_when="the status is no longer paused",
    call=_resume,
    leads_to=st.RUNNING,
    runs_again=True,
    refused="only a stopped conversation resumes",
)
SEND = Command(
    name="send",
    button="Send",
    place="input",
    doing="sending…",
    allowed_by="send",
    calls={
        "v1": "POST /api/v1/app-conversations/{id}/send-message (agent server: POST "
        "/api/conversations/{id}/events where the app server has no such route)",
        "v0": "POST {runtime}/message",
    },
    done_when="the server shows the message, or a new state",
    call=_send,
    leads_to=st.RUNNING,
    evidence=_echoed,
    echoes=True,
    runs_again=True,
    refused="it takes no message now",
    style="primary",
)
APPROVE = Command(
    name="approve",
    button="Approve",
    place="approval",
    doing="approving…",
    allowed_by="answer",
    calls={
        "v1": "agent server: POST /api/conversations/{id}/events/respond_to_confirmation "
        '{"accept": true}',
        "v0": "(no confirmation mode)",
    },
    done_when="an observation for an approved action, or a new state",
    call=_approve,
    leads_to=st.RUNNING,
    evidence=_answered,
    runs_again=True,
    resend=True,
    refused="nothing waits for approval",
    style="primary",
)
REJECT = Command(
    name="reject",
    button="Reject",
    place="approval",
    doing="rejecting…",
    allowed_by="answer",
    calls={
        "v1": "agent server: POST /api/conversations/{id}/events/respond_to_confirmation "
        '{"accept": false, "reason": …}',
        "v0": "(no confirmation mode)",
    },
    done_when="a rejection for the actions, or a new state",
    call=_reject,
    leads_to=st.IDLE,
    evidence=_rejected,
    refused="nothing waits for approval",
    max_text=MAX_REASON,
    default_text="Rejected by the user.",
    style="danger",
)
DELETE = Command(
    name="delete",
    button=None,
    place="",
    doing="deleting…",
    allowed_by=None,
    calls={
        "v1": "DELETE /api/v1/app-conversations/{id} (DELETE /api/conversations/{id} on 1.6)",
        "v0": "DELETE /api/conversations/{id}",
    },
    done_when="the server accepts it",
    call=_delete,
    leads_to=st.ARCHIVED,
    done_on_answer=True,
)
PAUSE_SANDBOX = Command(
    name="pause_sandbox",
    button=None,
    place="",
    doing="pausing the sandbox…",
    allowed_by=None,
    calls={
        "v1": "POST /api/v1/sandboxes/{sandbox}/pause",
        "v0": "(no sandboxes)",
    },
    done_when="the sandbox is paused",
    call=_pause_sandbox,
    leads_to=st.PAUSED,
)

#: every command, by name
COMMANDS: dict[str, Command] = {
    c.name: c for c in (STOP, RESUME, SEND, APPROVE, REJECT, DELETE, PAUSE_SANDBOX)
}


def allowed(command: Command, status: str) -> bool:
    """Whether ``status`` allows ``command`` (by the status rules)."""
    if command.allowed_by is None:
        return status != st.QUEUED
    return bool(getattr(st.rules(status), command.allowed_by, False))


def refusal(command: Command, status: str, ident: str) -> str:
    """One line on why ``command`` cannot be sent now."""
    if status == st.ARCHIVED:
        return f"Conversation {ident} is archived: it was deleted, or its sandbox is gone."
    return f"Conversation {ident} is {status}: {command.refusals.get(status, command.refused)}."


def buttons(status: str, under: Under | None) -> list[dict[str, Any]]:
    """The buttons a conversation's card and the panel draw, from this table: each with its
    command, label, style and whether it can be clicked now."""
    rules = st.rules(status)
    out = []
    for command in COMMANDS.values():
        if command.button is None:
            continue
        label = command.button
        if command.cancels_queued and rules.cancel:
            label = "Cancel"
        out.append(
            {
                "command": command.name,
                "label": label,
                "place": command.place,
                "style": command.style,
                "enabled": under is None and allowed(command, status),
            }
        )
    return out
