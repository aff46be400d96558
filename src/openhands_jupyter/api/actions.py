"""Actions waiting for the user's approval (confirmation mode): what each would do, and the
risk the agent gave it, read from its event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .models import Event
from .text import shorten, visible

DETAIL_LIMIT = 4000
RISKS = ("LOW", "MEDIUM", "HIGH", "UNKNOWN")


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
    def from_event(cls, event: Event) -> PendingAction:
        raw = event.raw
        risk = str(raw.get("security_risk") or "UNKNOWN").upper()
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
