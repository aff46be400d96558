"""What a browser tells a conversation widget about its views, for tests with no browser."""

from __future__ import annotations

from typing import Any


def view(widget: Any, shown: bool = True, view_id: str = "test-view") -> None:
    """What the browser's render (``shown``) and its cleanup (gone) send: a widget with a view
    on screen keeps its conversation watched (live feed, changes read) however long it runs."""
    content = {"view": "shown" if shown else "gone", "id": view_id}
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )
