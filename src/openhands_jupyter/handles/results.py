"""What the agent produced, brought into the notebook: ``conv.load(path)`` (a DataFrame for a
table, else text or bytes) and ``conv.show(path)`` (an image, an HTML report or a Markdown
file shown under the cell, none of it able to run code in the notebook)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ..api.errors import InputError
from .files import Host, _checked


def _ipython() -> Any:
    """IPython's display objects (imported when first needed: a script never pays for it)."""
    from IPython import display

    return display


#: what ``load`` reads into a DataFrame, by suffix
TABLES = (".csv", ".tsv", ".parquet", ".json", ".jsonl")
IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
#: how tall a shown HTML report's frame is, in pixels
FRAME_HEIGHT = 480


def _suffix(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


def _pandas(path: str) -> Any:
    try:
        import pandas
    except ImportError:
        raise InputError(
            f"load() reads {path} into a pandas DataFrame: install pandas "
            "(conv.read_file(path) gives its text)."
        ) from None
    return pandas


def loaded(path: str, data: bytes) -> Any:
    """``data`` (the file at ``path``) as ``load`` returns it."""
    suffix = _suffix(path)
    if suffix not in TABLES:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    pd = _pandas(path)
    buffer = io.BytesIO(data)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(buffer, sep="\t" if suffix == ".tsv" else ",")
    if suffix == ".jsonl":
        return pd.read_json(buffer, lines=True)
    if suffix == ".parquet":
        try:
            return pd.read_parquet(buffer)
        except ImportError:
            raise InputError(
                f"load() reads {path} with pyarrow: install pyarrow "
                "(conv.save_file(path) saves the file as it is)."
            ) from None
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}.") from None
    tabular = (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)) or (
        isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values())
    )
    return pd.DataFrame(value) if tabular else value


def _escaped_markdown(text: str) -> str:
    """Markdown with its HTML made text: tags are shown, never run (code blocks and code
    spans are left as written; the renderer shows them as text already)."""
    out = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append(line)
            continue
        if fenced:
            out.append(line)
            continue
        parts = re.split(r"(`[^`]*`)", line)
        out.append(
            "".join(
                p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;")
                for p in parts
            )
        )
    return "".join(out)


def shown(path: str, data: bytes) -> Any:
    """The object IPython displays for ``data`` (the file at ``path``)."""
    shows = _ipython()
    suffix = _suffix(path)
    name = html.escape(PurePosixPath(path).name, quote=True)
    if suffix in IMAGES:
        # as an <img>: a picture only (an SVG's scripts do not run inside one)
        src = f"data:{IMAGES[suffix]};base64,{base64.b64encode(data).decode('ascii')}"
        return shows.HTML(f'<img src="{src}" alt="{name}" style="max-width: 100%">')
    text = data.decode("utf-8", errors="replace")
    if suffix in (".html", ".htm"):
        # in a frame that runs nothing and reaches nothing of the notebook
        return shows.HTML(
            f'<div class="ohj-shown"><iframe sandbox="" title="{name}" '
            f'srcdoc="{html.escape(text, quote=True)}" '
            f'style="width: 100%; height: {FRAME_HEIGHT}px; border: 1px solid #d0d7de">'
            "</iframe></div>"
        )
    if suffix in (".md", ".markdown"):
        return shows.Markdown(_escaped_markdown(text))
    return shows.Pretty(text)


class ResultsMixin:
    """``load()`` and ``show()`` for :class:`Conversation` (reading through its workspace)."""

    _host: Host

    if TYPE_CHECKING:

        async def read_bytes_async(self, path: str) -> bytes: ...

    async def load_async(self, path: str) -> Any:
        """See :meth:`load`."""
        path = _checked(path)
        return loaded(path, await self.read_bytes_async(path))

    def load(self, path: str) -> Any:
        """A file from the agent's workspace (relative to its project, or absolute) as a
        Python value: a pandas DataFrame for ``.csv``, ``.tsv``, ``.parquet``, ``.jsonl`` and
        a ``.json`` table (a list of records, or columns), any other JSON as its value, text
        for other text files and bytes for the rest."""
        return self._host.run_sync(self.load_async(path))

    def show(self, path: str) -> None:
        """Display a file from the agent's workspace under the cell: an image, an HTML report
        (in a sandboxed frame: its scripts do not run), a Markdown file (its HTML shown as
        text), or any other file's text."""
        path = _checked(path)
        _ipython().display(shown(path, self._host.run_sync(self.read_bytes_async(path))))
