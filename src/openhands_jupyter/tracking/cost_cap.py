"""The cost cap: a conversation started with ``max_cost`` is followed figure by figure, and
stopped through the one command path once its cost passes the cap."""

from __future__ import annotations

from ..api import status as st
from ..api.errors import OpenHandsError
from ..api.text import money
from .commands import REJECT, STOP, Command
from .core import TrackerCore
from .state import Tracked


class CostCap(TrackerCore):
    """Watches each conversation's cost against the cap it was started with."""

    def _capped(self, tracked: Tracked) -> bool:
        """It has a cost cap not yet acted on (its stats events are read for the cost)."""
        return bool(tracked.request and tracked.request.max_cost) and not tracked.cost_stopped

    def _cost_followed(self, tracked: Tracked) -> bool:
        """Its cost is followed as it comes: a cap not yet acted on, or acted on while the run
        has not yet stopped (the last figures come up to the stop, and are what was spent)."""
        return self._capped(tracked) or (
            tracked.cost_stopped and tracked.tracking and tracked.status not in st.FINAL
        )

    def _check_cost(self, tracked: Tracked) -> None:
        """Once its cost passes the cap it was started with, stop the agent through the same
        command path (a running agent is stopped; an action waiting for approval is rejected,
        which stops it), once: going on after that goes on without the cap."""
        if not self._capped(tracked) or tracked.status not in (st.RUNNING, st.WAITING):
            return
        cap = tracked.request.max_cost if tracked.request else None
        usage = tracked.usage
        if cap is None or usage is None or usage.cost is None or usage.cost <= cap:
            return
        tracked.cost_stopped = True
        spent = f"{money(usage.cost)} spent, past max_cost {money(cap)}"
        if tracked.status == st.WAITING:
            self._spawn(self._cap(tracked, REJECT, f"The cost cap was reached: {spent}.", spent))
        else:
            self._spawn(self._cap(tracked, STOP, "", spent))

    async def _cap(self, tracked: Tracked, command: Command, text: str, spent: str) -> None:
        go_on = "Send a follow-up" if command is REJECT else "Resume"
        tracked.stopped_why = f"Stopped by its cost cap: {spent}. {go_on} to go on without the cap."
        try:
            await self.command(tracked, command.name, text=text, origin="cost cap")
        except OpenHandsError as exc:
            tracked.cost_stopped = False  # tried again at the next figure
            tracked.stopped_why = None
            tracked.last_error = f"Retrying: could not stop it at its cost cap ({exc})"
            self._publish(tracked)
