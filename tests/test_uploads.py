"""The notebook's data and files go into the agent's workspace before its task, and the task
says where each one is and what it is; what cannot go is said before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from openhands_jupyter import InputError
from openhands_jupyter.handles.uploads import uploads_for

from .conftest import SimClient

SCORES = pd.DataFrame({"name": ["alpha", "beta"], "score": [1.5, 2.0]})


def test_data_and_files_reach_the_workspace_before_the_task(
    sim_client: SimClient, tmp_path: Path
) -> None:
    sim, oh = sim_client()
    (tmp_path / "train.csv").write_text("x,y\n1,2\n")
    folder = tmp_path / "refs"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("first")
    (folder / "deep" / "b.txt").write_text("second")
    conv = oh.start(
        "Summarise the scores",
        data={"scores": SCORES, "config": {"model": "small", "steps": 3}},
        files=[tmp_path / "train.csv", folder],
    )
    conv.wait(timeout=30)
    assert conv.status == "finished", (conv.status, conv.detail)
    assert sim.stats.agent_counts["agent.upload"] == 5
    # the task the agent got: the user's words, then where each thing is
    world = sim.world.conversations[conv.id]  # type: ignore[index]
    root = "/workspace/project/notebook_data"
    lines = world.task.splitlines()
    assert lines[0] == "Summarise the scores"
    assert (
        f"- {root}/scores.parquet: the DataFrame `scores` as Parquet, 2 rows × 2 columns "
        f"(name {SCORES.dtypes['name']}, score float64)"
    ) in lines
    assert f"- {root}/config.json: `config` as JSON (dict)" in lines
    assert f"- {root}/train.csv: the file train.csv (8 bytes)" in lines
    assert f"- {root}/refs/deep/b.txt: the file b.txt (6 bytes)" in lines
    # and what is there is what was sent
    pd.testing.assert_frame_equal(conv.load(f"{root}/scores.parquet"), SCORES)
    assert conv.load("notebook_data/config.json") == {"model": "small", "steps": 3}
    assert conv.read_file("notebook_data/refs/a.txt") == "first"
    # the widget and the handle show the task as the user wrote it
    assert conv.task == "Summarise the scores"


def test_what_cannot_go_is_said_before_anything_is_sent(
    sim_client: SimClient, tmp_path: Path
) -> None:
    sim, oh = sim_client()
    bad = [
        ({"data": {"my df": SCORES}}, "cannot name data"),
        ({"data": {"f": open}}, "f cannot be sent: DataFrames and JSON values"),
        ({"data": [SCORES]}, "data is a dict of name -> value"),
        ({"files": [tmp_path / "missing.csv"]}, "There is no file or folder"),
        ({"data": {"a": 1}, "files": [tmp_path / "a.json"]}, "same name: a.json"),
    ]
    (tmp_path / "a.json").write_text("{}")
    for kwargs, message in bad:
        with pytest.raises(InputError, match=message) as info:
            oh.start("Never sent", **kwargs)
        assert "\n" not in str(info.value)
    assert sum(sim.counts.values()) == 0 and sum(sim.stats.agent_counts.values()) == 0


def test_too_much_is_refused_with_its_size() -> None:
    big = pd.DataFrame({"x": range(200_000)})
    with pytest.raises(
        InputError, match=r"That is \d+\.\d [kM]B to send; at most 1\.0 kB goes with one task"
    ):
        uploads_for({"big": big}, None, limit=1024)


def test_without_pyarrow_a_dataframe_goes_as_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    [upload] = uploads_for({"scores": SCORES}, None)
    assert upload.name == "scores.csv" and upload.data.decode().splitlines()[0] == "name,score"
    assert "as CSV, 2 rows × 2 columns" in upload.about


def test_a_polars_dataframe_goes_as_parquet_with_its_schema(
    sim_client: SimClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"name": ["alpha", "beta"], "score": [1.5, 2.0]})
    sim, oh = sim_client()
    conv = oh.start("Summarise the scores", data={"scores": frame})
    conv.wait(timeout=30)
    assert conv.status == "finished", (conv.status, conv.detail)
    world = sim.world.conversations[conv.id]  # type: ignore[index]
    assert (
        "- /workspace/project/notebook_data/scores.parquet: the DataFrame `scores` as Parquet, "
        "2 rows × 2 columns (name String, score Float64)"
    ) in world.task.splitlines()
    pd.testing.assert_frame_equal(conv.load("notebook_data/scores.parquet"), SCORES)
    # polars writes Parquet itself: no pyarrow needed on the way in
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    [upload] = uploads_for({"scores": frame}, None)
    assert upload.name == "scores.parquet"
    assert pl.read_parquet(upload.data).equals(frame)
