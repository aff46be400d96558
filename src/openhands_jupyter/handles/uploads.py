"""The notebook's data and files made ready for the agent's workspace: DataFrames as Parquet
(CSV without pyarrow), other values as JSON, files and folders as they are; each said in a
line (columns, types and rows, or size) for the task. Checked before any request is sent."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..api.backend import Upload
from ..api.errors import InputError

#: how much may be sent with one task, in bytes, unless told otherwise
MAX_UPLOAD = 200 * 1024 * 1024
#: the files one folder may hold to be sent
MAX_FILES = 1000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


def size_text(n: int) -> str:
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{n} bytes"


def _is_frame(value: Any) -> str | None:
    """``"pandas"`` or ``"polars"`` for a DataFrame of either, else ``None``."""
    module = type(value).__module__.split(".")[0]
    if type(value).__name__ == "DataFrame" and module in ("pandas", "polars"):
        return module
    return None


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _frame(name: str, value: Any, kind: str) -> Upload:
    rows, cols = value.shape
    if kind == "pandas":
        columns = [f"{c} {t}" for c, t in zip(value.columns, value.dtypes, strict=True)]
    else:
        columns = [f"{c} {t}" for c, t in value.schema.items()]
    buffer = io.BytesIO()
    if kind == "polars":
        # polars writes Parquet itself, pyarrow or not
        suffix, form = "parquet", "Parquet"
        value.write_parquet(buffer)
    elif _has_pyarrow():
        suffix, form = "parquet", "Parquet"
        value.to_parquet(buffer)
    else:
        suffix, form = "csv", "CSV"
        value.to_csv(buffer, index=False)
    shown = ", ".join(columns[:50]) + (
        f" and {len(columns) - 50} more" if len(columns) > 50 else ""
    )
    about = f"the DataFrame `{name}` as {form}, {rows} rows × {cols} columns ({shown})"
    return Upload(f"{name}.{suffix}", buffer.getvalue(), about)


def _value(name: str, value: Any) -> Upload:
    try:
        text = json.dumps(value, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} cannot be sent: DataFrames and JSON values (dicts, lists, text, numbers) "
            f"can ({exc})."
        ) from None
    return Upload(
        f"{name}.json", text.encode("utf-8"), f"`{name}` as JSON ({type(value).__name__})"
    )


def _file(path: Path, name: str) -> Upload:
    data = path.read_bytes()
    return Upload(name, data, f"the file {path.name} ({size_text(len(data))})")


def uploads_for(
    data: Mapping[str, Any] | None,
    files: Iterable[str | Path] | None,
    limit: int = MAX_UPLOAD,
) -> tuple[Upload, ...]:
    """What ``start(..., data=..., files=...)`` sends; raises ``InputError`` (one line) for a
    name or a value it cannot send, a file that is not there, or more than ``limit`` bytes."""
    out: list[Upload] = []
    if data is not None and not isinstance(data, Mapping):
        raise InputError("data is a dict of name -> value, e.g. data={'df': df}.")
    for name, value in (data or {}).items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError(f"{name!r} cannot name data: use letters, digits and _ (df, train).")
        kind = _is_frame(value)
        out.append(_frame(name, value, kind) if kind else _value(name, value))
    if isinstance(files, (str, Path)):
        files = [files]
    for item in files or []:
        path = Path(item).expanduser()
        if path.is_file():
            out.append(_file(path, path.name))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            if len(found) > MAX_FILES:
                raise InputError(f"{path} holds {len(found)} files: at most {MAX_FILES} go.")
            for inner in found:
                rel = inner.relative_to(path.parent).as_posix()
                out.append(_file(inner, rel))
        else:
            raise InputError(f"There is no file or folder {item!s} to send.")
    names = [u.name for u in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"Two things would go to the same name: {', '.join(twice)}.")
    total = sum(len(u.data) for u in out)
    if total > limit:
        raise InputError(
            f"That is {size_text(total)} to send; at most {size_text(limit)} goes with one task."
        )
    return tuple(out)
