"""``OpenHands``: the blocking client, :class:`AsyncOpenHands` without ``await``."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable
from typing import Any

from ..api.ids import normalize_id
from ..api.secrets import Secret
from ..tracking import Tracker, TrackerConfig
from .client import AsyncOpenHands, left_out, start_kwargs, task_rows
from .conversation import Conversation
from .fanout import ConversationSet, tasks_from
from .uploads import uploads_for


class OpenHands:
    """The blocking client: the same methods as :class:`AsyncOpenHands`, without ``await``.

    Tracking still runs in the background (on the kernel's loop in a notebook, on a daemon
    thread elsewhere); in a script each status change is printed unless ``progress=False``.
    """

    def __init__(
        self, api_key: str | Secret | None = None, base_url: str | None = None, **kwargs: Any
    ) -> None:
        self.aio = AsyncOpenHands(api_key, base_url, **kwargs)

    def __repr__(self) -> str:
        return repr(self.aio).replace("AsyncOpenHands", "OpenHands", 1)

    @property
    def base_url(self) -> str:
        return self.aio.base_url

    @property
    def tracker(self) -> Tracker:
        return self.aio.tracker

    @property
    def generation(self) -> str | None:
        return self.aio.generation

    @property
    def tracked(self) -> list[Conversation]:
        return self.aio.tracked

    @property
    def settings(self) -> TrackerConfig:
        return self.aio.settings

    def reconfigure(self, settings: TrackerConfig) -> None:
        self.aio.reconfigure(settings)

    @property
    def closed(self) -> bool:
        return self.aio.closed

    def untrack_all(self) -> None:
        self.aio.untrack_all()

    def start(
        self,
        task: str,
        repository: str | None = None,
        branch: str | None = None,
        title: str | None = None,
        *,
        background: bool = False,
        **extra: Any,
    ) -> Conversation:
        """Start a conversation and follow it; returns as soon as the server accepted it
        (``background=True``: at once, see :meth:`AsyncOpenHands.start`)."""
        # every input is checked (and the data made ready) before anything is sent
        request = self.aio.build_request(task, repository, branch, title, **extra)
        self._pin_tracker()
        return self.aio.run_sync(self.aio.start_request(request, background=background))

    def start_many(self, tasks: Iterable[Any]) -> list[Conversation]:
        rows = list(task_rows(tasks))
        for item in rows:
            self.aio.build_request(**start_kwargs(item))
        self._pin_tracker()
        return self.aio.run_sync(self.aio.start_many(rows))

    def map(self, template: str, rows: Any, **options: Any) -> ConversationSet:
        """Start one conversation per row: ``template`` with each row's ``{column}`` filled
        (``rows``: a DataFrame or a list of dicts; ``options`` as for :meth:`start`). Returns
        at once, every start in the launch queue; in a notebook the set shows as a live
        table."""
        tasks = tasks_from(template, task_rows(rows))
        # the data and files go with every row: made ready once, not once per row
        uploads = uploads_for(options.pop("data", None), options.pop("files", None))
        requests = [
            dataclasses.replace(self.aio.build_request(task, **options), uploads=uploads)
            for task in tasks
        ]
        self._pin_tracker()

        async def started() -> ConversationSet:
            out = ConversationSet(
                [await self.aio.start_request(r, background=True) for r in requests]
            )
            out.client = self
            return out

        return self.aio.run_sync(started())

    def get(self, conversation_id: str, *, track: bool = True) -> Conversation:
        cid = normalize_id(conversation_id)
        self._pin_tracker()
        return self.aio.run_sync(self.aio.get(cid, track=track))

    def _pin_tracker(self) -> None:
        """Choose the tracker's loop here, on the caller's thread (a kernel's loop), before the
        request runs on the client's I/O thread."""
        self.aio.tracker.ensure_loop()

    def list(self, limit: int = 20) -> builtins.list[Conversation]:
        return left_out(*self.aio.run_sync(self.aio._list(limit)))

    def count(self) -> int:
        return self.aio.run_sync(self.aio.count())

    def close(self) -> None:
        self.aio.close()

    def __enter__(self) -> OpenHands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
