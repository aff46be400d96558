"""The tracker's side of the command table: one path for every command (checked against the
status rules, sent, shown as under way) and the server's evidence that confirms it. A state the
server shows that is still the one from before the command never counts as its outcome."""

from __future__ import annotations

import asyncio
from typing import Any

from ..api import status as st
from ..api.backend import Backend
from ..api.errors import (
    APIConnectionError,
    ConflictError,
    InputError,
    NotFoundError,
    OpenHandsError,
    RunCapacityError,
)
from ..api.ids import later, parse_time
from ..api.models import ConversationInfo, Event
from ..api.secrets import package_logger
from ..api.text import wall_clock_in
from ..api.transport import backoff_delay, within
from .commands import COMMANDS, Args, Under, allowed, refusal
from .core import TrackerCore
from .state import Tracked

log = package_logger("openhands_jupyter.tracking")

#: status answers that still show the state from before a command, after which it is given up
MAX_UNCHANGED_POLLS = 4
#: how long a command waits for one already under way (seconds, scaled)
COMMAND_PATIENCE = 30.0
#: a command with no sign of it after this long (seconds, scaled) is checked, and sent again
RESEND_AFTER = 0.3
#: resends back off to this (seconds, scaled), and stop once the command is this old: an agent
#: server finishes a run's wind-down (publishing its last events) within 30 s
RESEND_CAP = 5.0
RESEND_FOR = 45.0
#: how long a patient command (stop) waits for the server's answer before it returns
ANSWER_PATIENCE = 1.0
#: how often a run refused for want of capacity is asked for (about 15 minutes in all)
RUN_ATTEMPTS = 35


def _ident(tracked: Tracked) -> str:
    return (tracked.conversation_id or "")[:8] or "(not started)"


class Steering(TrackerCore):
    """Mixed into :class:`~openhands_jupyter.tracking.tracker.Tracker`: runs commands on its
    loop and reads the server's evidence for them."""

    # -- sending ---------------------------------------------------------------------------------
    async def command(
        self,
        tracked: Tracked,
        name: str,
        *,
        text: str = "",
        ids: tuple[str, ...] | list[str] | None = None,
        origin: str = "",
    ) -> Any:
        """Send command ``name`` (see :data:`~openhands_jupyter.tracking.commands.COMMANDS`) and
        return once the server has accepted it; it shows as under way until the server's own
        evidence confirms it. Must run on the tracker's loop. Raises ``ConflictError`` in one
        line when the status does not allow it, or when the actions it answers are no longer
        the ones waiting."""
        command = COMMANDS[name]
        if command.cancels_queued and tracked.status == st.QUEUED:
            self.cancel_queued(tracked)
            return None
        if not tracked.conversation_id:
            raise ConflictError(
                f"The conversation is {tracked.status}: it has no id yet. Wait for it to start."
            )
        while (under := tracked.command) is not None and not command.done_on_answer:
            if under.command is command and (not ids or tuple(ids) == under.args.ids):
                return None  # the same command is under way (a double click): once is enough
            # another one is under way (a resume right after a stop): this one waits for it
            try:
                await within(under.done.wait(), self.config.s(COMMAND_PATIENCE))
            except asyncio.TimeoutError:
                raise ConflictError(
                    f"Conversation {_ident(tracked)} is still {under.doing} Try again once that "
                    "is done."
                ) from None
        if not allowed(command, tracked.status):
            error = NotFoundError if tracked.status == st.ARCHIVED else ConflictError
            raise error(refusal(command, tracked.status, _ident(tracked)))
        if command.echoes and not text.strip():
            raise InputError("The message is empty.")
        text = text or command.default_text
        if command.max_text is not None and len(text) > command.max_text:
            raise InputError(
                f"The reason is {len(text):,} characters long: at most {command.max_text:,} "
                f"go with {name}."
            )
        backend = await self._get_backend()
        info = await self._current_info(backend, tracked)
        args = Args(text, tuple(ids or ()))
        if command.allowed_by == "answer":
            args = Args(text, await self._bound(tracked, args.ids))
            if tracked.command is not None:  # a second click while the first was checked
                return None
        under = Under(command, tracked.status, self._now(), args, origin=origin)
        under.server_time = tracked.server_time
        tracked.command = under
        tracked.command_note = None
        tracked.command_at = under.since
        if command.echoes:
            tracked.expect_echo(text)
        self._publish(tracked)
        answer: Any = command.call(backend, info, args)
        late = False
        if command.patient:
            # an agent server may hold a patient command's answer while the run winds down
            # (1.58's /interrupt waits up to 5 s): once sent, its evidence decides
            answer = asyncio.ensure_future(answer)
            try:
                await asyncio.wait([answer], timeout=self.config.s(ANSWER_PATIENCE))
            except BaseException:
                answer.cancel()
                self._abandon(tracked, under)
                raise
            late = not answer.done()
        result = None
        if late:
            self._spawn(self._late_answer(tracked, under, answer))
        else:
            try:
                result = await answer
            except APIConnectionError as exc:
                if not command.patient or getattr(exc, "not_sent", False):
                    self._abandon(tracked, under)
                    raise
                # the server has the request but has not answered: its evidence decides
                tracked.command_note = f"No answer from the server yet ({exc}); still {under.doing}"
            except RunCapacityError:
                # kept there, with no room to run yet: the run is asked for until it starts
                under.answered = True
                self._spawn(self._run_when_free(tracked))
            except BaseException:
                self._abandon(tracked, under)
                raise
            else:
                under.answered = True
        if tracked.command is not under:
            return result  # confirmed already (the socket can bring the evidence first)
        if command.runs_again:
            tracked.reset_answer()
            tracked.final_left = 0
            if tracked.key not in self.entries:
                self.entries[tracked.key] = tracked
                self.call_soon(self._entries_changed)
            tracked.tracking = True
        if command.done_on_answer:
            self._finish(tracked, command.leads_to)
        else:
            if command.resend:
                self._spawn(self._resend_unconfirmed(tracked, under, backend, info))
            # ask again soon: the server's evidence confirms it
            soon = self._now() + self.config.s(0.5)
            tracked.next_due = min(tracked.next_due, soon)
            tracked.events_due = min(tracked.events_due, soon)
        self._start_task()
        self._sync_live(tracked)
        self._publish(tracked)
        return result

    async def _resend_unconfirmed(
        self, tracked: Tracked, under: Under, backend: Backend, info: ConversationInfo
    ) -> None:
        """Send ``under`` again while the server shows no sign of it and the actions it
        answers still wait (read from the agent server first: an answer never goes to an
        action that was not shown)."""
        attempt = 0
        while self._now() - under.since < self.config.s(RESEND_FOR):
            delay = min(RESEND_AFTER * 2**attempt, RESEND_CAP)
            attempt += 1
            try:
                await within(under.done.wait(), self.config.s(delay))
                return
            except asyncio.TimeoutError:
                pass
            endpoint = self._endpoint(tracked)
            if tracked.command is not under or endpoint is None:
                return
            try:
                found = await self.agent.events_since(
                    endpoint, None, on_drop=tracked.drop, on_cut=tracked.begin_at
                )
                self._evidence(tracked, tracked.add_events(found))
                if tracked.command is not under:
                    return  # its evidence was there
                waiting = await self.agent.execution_status(endpoint) == "waiting_for_confirmation"
                still = set(a.id for a in tracked.pending) == set(under.args.ids)
                if not waiting:
                    return  # it moved on: what it shows comes with the next poll or push
                if not still:
                    break  # other actions wait now: this answer is not theirs
                under.resent += 1
                log.debug(
                    "%s shows no sign of %s; sending it again", _ident(tracked), under.command.name
                )
                await under.command.call(backend, info, under.args)
            except OpenHandsError as exc:
                log.debug("could not check or resend %s: %s", under.command.name, exc)
            self._publish(tracked)
        if tracked.command is under:
            self._give_up(tracked, under, tracked.status)

    async def _run_when_free(self, tracked: Tracked) -> None:
        """Ask for the run an agent server had no room for (429: its run capacity is full;
        what was sent is kept there), backing off, until it starts or something else runs it."""
        for attempt in range(RUN_ATTEMPTS):
            delay = backoff_delay(attempt, base=self.config.s(2.0), cap=self.config.s(30.0))
            tracked.command_note = (
                "The agent server has no room to run it now (its run capacity is full): "
                f"asking again at {wall_clock_in(delay)}."
            )
            self._publish(tracked)
            await self.clock.sleep(delay)
            endpoint = self._endpoint(tracked)
            if endpoint is None:
                break  # its agent server is gone: its status says what became of it
            try:
                await self.agent.run(endpoint)
            except RunCapacityError:
                continue
            except ConflictError:
                break  # running already (the agent server's own word, not a status shown)
            except OpenHandsError as exc:
                tracked.command_note = f"The run could not be started: {exc}"
                self._publish(tracked)
                return
            break
        else:
            tracked.command_note = (
                "The agent server had no room to run it for a long while: Resume to try again."
            )
            self._publish(tracked)
            return
        tracked.command_note = None
        soon = self._now() + self.config.s(0.5)
        tracked.next_due = min(tracked.next_due, soon)
        self._start_task()
        self._publish(tracked)

    async def _late_answer(self, tracked: Tracked, under: Under, call: asyncio.Future[Any]) -> None:
        """The answer to a command that returned before it came: a refusal ends the command
        and is said on the card; a timeout leaves it to the server's evidence."""
        try:
            await call
        except APIConnectionError as exc:
            if tracked.command is under:
                tracked.command_note = f"No answer from the server yet ({exc}); still {under.doing}"
        except RunCapacityError:
            under.answered = True
            self._spawn(self._run_when_free(tracked))
        except OpenHandsError as exc:
            if tracked.command is under:
                self._abandon(tracked, under)
                tracked.command_note = f"{under.command.button or under.command.name} failed: {exc}"
        else:
            under.answered = True
        self._publish(tracked)

    def _abandon(self, tracked: Tracked, under: Under) -> None:
        under.done.set()
        if tracked.command is under:
            tracked.command = None
        if under.command.echoes:
            tracked.expect_echo(None)
        self._publish(tracked)

    async def _current_info(self, backend: Backend, tracked: Tracked) -> ConversationInfo:
        """The server's description to act on: the tracker's, read again when it has none or
        no sandbox yet."""
        info = tracked.info
        if info is None or (backend.version == "v1" and not info.sandbox_id):
            cid = tracked.conversation_id
            assert cid is not None
            [info] = await backend.conversations([cid], frozenset([cid]))
            if info is None:
                raise ConflictError(f"Conversation {_ident(tracked)} is not on the server.")
            info.readable()
        return info

    async def _bound(self, tracked: Tracked, ids: tuple[str, ...]) -> tuple[str, ...]:
        """The actions an answer is for: those given, else those shown (``pending``), checked
        against what the server has waiting now. Refused when they differ: an answer is
        never given to an action nobody saw."""
        shown = ids or tuple(a.id for a in tracked.pending)
        if not shown:
            raise ConflictError(f"Conversation {_ident(tracked)}: nothing waits for approval.")
        endpoint = self._endpoint(tracked)
        if endpoint is not None:
            found = await self.agent.events_since(
                endpoint, None, on_drop=tracked.drop, on_cut=tracked.begin_at
            )
            tracked.add_events(found)
        now = tuple(a.id for a in tracked.pending)
        if set(shown) != set(now):
            self._publish(tracked)
            if not now:
                raise ConflictError(
                    f"Conversation {_ident(tracked)}: nothing waits for approval any more "
                    "(it was answered elsewhere)."
                )
            raise ConflictError(
                f"Conversation {_ident(tracked)}: what waits for approval changed since it was "
                f"shown; now {'; '.join(a.line() for a in tracked.pending)}. Look, then answer "
                "again."
            )
        return now

    # -- the server's evidence -------------------------------------------------------------------
    def _evidence(self, tracked: Tracked, events: list[Event]) -> None:
        """New events (from any source): do they show that the command under way took effect?"""
        under = tracked.command
        if under is None:
            return
        for event in events:
            if not self._after_command(under, event):
                continue
            if under.command.evidence(under, event):
                unchanged = tracked.status == under.baseline
                self._finish(tracked, under.command.leads_to if unchanged else None)
                return

    @staticmethod
    def _after_command(under: Under, event: Event) -> bool:
        """An event newer than the newest one seen when the command went out (an older one
        read late never confirms it)."""
        if under.server_time is None:
            return True
        stamp = event.raw.get("timestamp") if event.raw else None
        mine, then = parse_time(stamp), parse_time(under.server_time)
        if mine is None or then is None:
            return True
        return not later(then, mine)

    def _observe(self, tracked: Tracked, status: str, *, poll: bool) -> None:
        """A status the server shows, asked or pushed after the command went out. One that is
        still the state from before it may predate the command, and never reverts it; another
        one is the server's word: the command is done (or overtaken)."""
        under = tracked.command
        assert under is not None
        if status == under.baseline:
            # a command sent again while nothing shows it is given up by its resends
            if poll and not under.command.resend:
                under.polls += 1
                if under.polls > MAX_UNCHANGED_POLLS:
                    self._give_up(tracked, under, status)
            return
        self._finish(tracked, status)

    def _give_up(self, tracked: Tracked, under: Under, status: str) -> None:
        """The server still shows the state from before ``under``: it is no longer waited for."""
        under.done.set()
        if tracked.command is under:
            tracked.command = None
        tracked.command_note = (
            f"The server has not confirmed {under.command.name.replace('_', ' ')}: "
            f"it still says {status}."
        )
        self._publish(tracked)

    def _finish(self, tracked: Tracked, status: str | None) -> None:
        """The command under way is done: show the status the server's evidence gives."""
        under, tracked.command = tracked.command, None
        tracked.command_note = None
        if under is not None:
            under.done.set()
        if status is not None and status != tracked.status:
            self._set_status(tracked, status)
        if (
            under is not None
            and under.command.runs_again
            and tracked.status
            in st.ACTIVE
            | {
                st.WAITING,
                st.IDLE,
                st.FINISHED,
            }
        ):
            tracked.stopped_why = None  # it ran again: what stopped it no longer stands
        self._publish(tracked)
        self._sync_live(tracked)
