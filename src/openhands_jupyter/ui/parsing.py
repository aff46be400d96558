"""Splitting ``%openhands`` lines into options and verbatim task text, and filling ``{name}``."""

from __future__ import annotations

import argparse
import re
from typing import Any

from IPython.core.error import UsageError

_TOKEN = re.compile(r"""("(?:[^"\\]|\\.)*"|'[^']*'|\S+)""")
_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        inner = token[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if token[0] == '"' else inner
    return token


def split_line(line: str, parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, str]:
    """Parse leading options; everything after them (or after ``--``) is the task, unchanged."""
    takes: dict[str, Any] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            takes[opt] = action.nargs
    tokens: list[str] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line) or line[pos] != "-":
            break
        match = _TOKEN.match(line, pos)
        assert match is not None
        token = match.group()
        if token == "--":
            pos = match.end()
            while pos < len(line) and line[pos] == " ":
                pos += 1
            break
        name = token.split("=", 1)[0]
        if name not in takes:
            raise UsageError(
                f"%openhands: unknown option {name!r}. Put -- before a task that starts with '-'; "
                "see %openhands? for the options."
            )
        tokens.append(token)
        pos = match.end()
        nargs = takes[name]
        if "=" in token or nargs == 0:
            continue
        while pos < len(line) and line[pos].isspace():
            pos += 1
        value = _TOKEN.match(line, pos)
        if value is None:
            if nargs == "?":
                continue
            raise UsageError(f"%openhands: option {name} needs a value.")
        if nargs == "?" and not value.group().isdigit():
            continue
        tokens.append(_unquote(value.group()))
        pos = value.end()
    try:
        args = parser.parse_args(tokens)
    except SystemExit:
        raise UsageError("%openhands: bad options; see %openhands?") from None
    return args, line[pos:].strip("\n").strip()


def fill_fields(text: str, namespace: dict[str, Any]) -> tuple[str, list[str]]:
    """Replace ``{name}`` (or ``{name.attr}``) from the namespace; ``{{`` and ``}}`` become
    braces. Returns the text and the fields left as written because no variable matched."""
    unfilled: list[str] = []

    def replace(match: re.Match[str]) -> str:
        whole = match.group()
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        first, *rest = match.group(1).split(".")
        if first not in namespace:
            unfilled.append(whole)
            return whole
        value = namespace[first]
        for attr in rest:
            if not hasattr(value, attr):
                unfilled.append(whole)
                return whole
            value = getattr(value, attr)
        return str(value)

    filled = _FIELD.sub(replace, text)
    return filled, list(dict.fromkeys(unfilled))
