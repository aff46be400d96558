"""Fan-out: one conversation per row of a table, from a task template with ``{column}`` fields
(``oh.map``), and the set of them as one thing: a table, a DataFrame, stop them all."""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from ..api import status as st
from ..api.errors import InputError, OpenHandsError
from .conversation import Conversation

#: the answer's first characters a row shows
EXCERPT = 200


def tasks_from(template: str, rows: Iterable[Any]) -> list[str]:
    """The template filled from each row (a dict, or a DataFrame's row); raises ``InputError``
    for a field no row can fill, before anything is sent."""
    if not isinstance(template, str) or not template.strip():
        raise InputError("map() needs a task template, e.g. 'Summarise {path}'.")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    except ValueError as exc:
        raise InputError(f"The template cannot be filled: {exc}.") from None
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"Row {i} is {type(row).__name__}: rows are dicts or a DataFrame.")
        missing = sorted(f for f in fields if f.split(".")[0].split("[")[0] not in row)
        if missing:
            raise InputError(f"Row {i} has no {', '.join(missing)} for the template.")
        out.append(template.format(**row))
    if not out:
        raise InputError("map() got no rows.")
    return out


async def stop_at_work(conversations: Iterable[Conversation]) -> int:
    """Ask every one of ``conversations`` still at work to stop (Stop all, in Python and in
    the table); returns how many were asked."""
    asked = 0
    for conv in conversations:
        if conv.status in st.ACTIVE:
            try:
                await conv.stop_async()
            except OpenHandsError:
                continue
            asked += 1
    return asked


class ConversationSet(list[Conversation]):
    """The conversations ``map`` started, in the rows' order. In a notebook it shows as a live
    table; ``to_dataframe()`` gives its state now, ``stop_all()`` stops those at work."""

    #: the client that started them (what the table reads through)
    client: Any = None

    def to_dataframe(self) -> Any:
        """One row per conversation: its task, status, cost, pull requests, the files it
        changed (as last read) and the start of its answer."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": c.id,
                    "task": c.task,
                    "status": c.status,
                    "cost": c.cost,
                    "prs": list(c.pr_numbers),
                    "changed_files": len(c.snapshot().changes),
                    "answer": (c.snapshot().result or "")[:EXCERPT],
                }
                for c in self
            ]
        )

    def stop_all(self) -> int:
        """Stop every conversation still at work (a queued one is not started); returns how
        many were asked. One that cannot be stopped now (one waiting for an approval: nothing
        runs there) is left as it is."""
        if not self:
            return 0
        return self[0]._host.run_sync(stop_at_work(self))

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for conv in self:
            counts[conv.status] = counts.get(conv.status, 0) + 1
        said = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"<ConversationSet of {len(self)}: {said}>"
