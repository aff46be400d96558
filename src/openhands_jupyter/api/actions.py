"""Actions waiting for the user's approval (confirmation mode): what each would do, and the
risk the agent gave it, read from its event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .models import Event
from .text import shorten, visible

DETAIL_LIMIT = 4000
#: from the least to the most worrying: a risk nobody rated counts below LOW
RISKS = ("UNKNOWN", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class PendingAction:
    """One action the agent wants to run: ``kind`` is ``command``, ``edit``, ``read`` or
    ``action`` (another tool); ``text`` the command or ``"<edit command> <path>"``; ``detail``
    the new text of an edit or a tool's arguments; ``risk`` LOW/MEDIUM/HIGH/UNKNOWN."""

    id: str
    kind: str
    tool: str
    text: str
    risk: str
    detail: str = ""

    @classmethod
    def from_event(cls, event: Event, analyzed: str | None = None) -> PendingAction:
        """``analyzed``: the risk a security analyzer gave it (agent servers since 1.58); the
        higher of that and the agent's own is shown."""
        raw = event.raw
        risk = max(
            (str(r).upper() for r in (raw.get("security_risk"), analyzed) if r),
            key=lambda r: RISKS.index(r) if r in RISKS else -1,
            default="UNKNOWN",
        )
        action = raw.get("action") if isinstance(raw.get("action"), dict) else {}
        assert isinstance(action, dict)
        detail = ""
        if event.type == "edit":
            for name in ("new_str", "file_text"):
                if isinstance(action.get(name), str) and action[name]:
                    detail = action[name]
                    break
        elif event.type not in ("command", "read"):
            call = raw.get("tool_call") if isinstance(raw.get("tool_call"), dict) else {}
            args: Any = call.get("arguments") if isinstance(call, dict) else None
            if isinstance(args, str):
                detail = args
            elif args is not None:
                detail = json.dumps(args)
        return cls(
            id=event.id,
            kind=event.type,
            tool=str(raw.get("tool_name") or event.kind or event.type),
            text=event.text,
            risk=risk if risk in RISKS else "UNKNOWN",
            detail=detail[:DETAIL_LIMIT],
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "kind": self.kind,
            "tool": self.tool,
            "text": self.text[:DETAIL_LIMIT],
            "risk": self.risk,
            "detail": self.detail,
        }

    def line(self) -> str:
        """One line for a script's progress output."""
        what = self.text or self.tool
        tool, what = shorten(visible(self.tool), 40), shorten(visible(what), 160)
        return f"[{self.risk} risk] {tool}: {what}"
