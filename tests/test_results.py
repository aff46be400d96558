"""What the agent made, brought into the notebook: ``conv.load(path)`` and ``conv.show(path)``;
nothing shown can run code in the notebook."""

from __future__ import annotations

import base64
import io
from typing import Any

import pandas as pd
import pytest

from openhands_jupyter import InputError
from openhands_jupyter.handles.results import loaded, shown
from openhands_jupyter.sim.scenarios import RESULTS

from .conftest import SimClient

SCORES = pd.DataFrame({"name": ["alpha", "beta"], "score": [1, 2]})


def test_load_gives_a_table_as_a_dataframe_and_the_rest_as_text(sim_client: SimClient) -> None:
    _sim, oh = sim_client()
    conv = oh.start("Report the scores [sim:report]")
    conv.wait(timeout=30)
    for path in ("results/scores.csv", "results/scores.json"):
        pd.testing.assert_frame_equal(conv.load(path), SCORES)
    assert conv.load("results/settings.json") == {"model": "sim", "steps": 3}
    assert conv.load("results/notes.md") == RESULTS["results/notes.md"]
    with pytest.raises(InputError, match="non-empty string"):
        conv.load("  ")


def test_every_table_form_and_bytes() -> None:
    parquet = io.BytesIO()
    SCORES.to_parquet(parquet)
    pd.testing.assert_frame_equal(loaded("s.parquet", parquet.getvalue()), SCORES)
    pd.testing.assert_frame_equal(loaded("s.tsv", b"name\tscore\nalpha\t1\nbeta\t2\n"), SCORES)
    jsonl = b'{"name": "alpha", "score": 1}\n{"name": "beta", "score": 2}\n'
    pd.testing.assert_frame_equal(loaded("s.jsonl", jsonl), SCORES)
    columns = b'{"name": ["alpha", "beta"], "score": [1, 2]}'
    pd.testing.assert_frame_equal(loaded("s.json", columns), SCORES)
    assert loaded("model.bin", b"\xff\x00\x01") == b"\xff\x00\x01"
    with pytest.raises(InputError, match=r"bad\.json is not JSON"):
        loaded("bad.json", b"{nope")


def test_a_missing_reader_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pyarrow(*args: Any, **kwargs: Any) -> Any:
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_pyarrow)
    with pytest.raises(InputError, match="install pyarrow"):
        loaded("s.parquet", b"PAR1")


def test_what_show_displays_cannot_run_code() -> None:
    svg = shown("results/chart.svg", RESULTS["results/chart.svg"].encode())
    # an <img> of the picture: its script is inside base64 data, never markup of the page
    assert svg.data.startswith('<img src="data:image/svg+xml;base64,') and "<script" not in svg.data
    encoded = svg.data.split("base64,")[1].split('"')[0]
    assert base64.b64decode(encoded).decode() == RESULTS["results/chart.svg"]
    report = shown("results/report.html", RESULTS["results/report.html"].encode())
    # a frame that allows nothing, its page given as escaped text
    assert '<iframe sandbox="" ' in report.data and "<script" not in report.data
    assert "&lt;script&gt;" in report.data
    notes = shown("results/notes.md", RESULTS["results/notes.md"].encode())
    # Markdown stays Markdown, its HTML is shown as text; code spans are left as written
    assert "**1**" in notes.data and "&lt;img src=x" in notes.data and "<img" not in notes.data
    assert "`x < y`" in notes.data
    text = shown("log.txt", b"<b>not bold</b>")
    assert text.data == "<b>not bold</b>" and type(text).__name__ == "Pretty"
