"""Charts read at a glance (axes from 0, whole ticks, one window readable, fixed colours), and the
Consumer page's history from the job's progress records (the SQLite store's sampling included)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from backend.aggregates.records import Progress
from backend.aggregates.sqlite_store import AggregatesStore
from backend.console import charts, history
from backend.console.monitor import RatePoint
from backend.console.views import rates_frame

T0 = 1_800_000_000.0


def test_ticks_are_whole_seconds_or_minutes_as_the_range_needs() -> None:
    assert charts.tick_step_s(0.002) == 1  # never 02:24:59.999 … 02:25:00.001
    assert charts.tick_step_s(30) == 5
    assert charts.tick_step_s(15 * 60) == 120
    assert charts.tick_step_s(24 * 3600) == 10800
    start = datetime(2026, 12, 7, 2, 24, tzinfo=UTC)
    short = charts.time_axis(start, start.replace(second=40))
    assert (short["dtick"], short["tickformat"]) == (5000, "%H:%M:%S")
    long = charts.time_axis(start, start.replace(hour=3))
    assert (long["dtick"], long["tickformat"]) == (600_000, "%H:%M")


def test_a_steady_rate_is_drawn_from_zero_with_its_unit() -> None:
    points = [RatePoint(T0 + i, 99.99 + (i % 2) * 0.02) for i in range(30)]
    figure = charts.rates_figure(rates_frame(points, "events/s"), "events/s", "Acknowledged events per second")
    assert figure.layout.yaxis.rangemode == "tozero"
    assert figure.layout.yaxis.title.text == "events/s"
    assert figure.layout.xaxis.tickformat == "%H:%M:%S"


def test_one_window_reads_as_a_window_wide_group_of_bars_in_the_kinds_colours() -> None:
    windows = pd.DataFrame(
        [{"window_start": "2026-12-07T02:25:00Z", "window_end": "2026-12-07T02:26:00Z", "tweets": 120,
          "retweets": 40, "replies": 20, "quotes": 6, "sentiment_avg": 0.1}]
    )  # fmt: skip
    figure = charts.windows_figure(windows, 60.0)
    assert [(t.name, t.marker.color) for t in figure.data] == list(charts.KIND_COLOURS.items())
    assert figure.layout.barmode == "group"
    low, high = (pd.Timestamp(x) for x in figure.layout.xaxis.range)
    assert (high - low).total_seconds() >= 180  # the window with room on both sides, not a dot on a 2 ms axis
    assert figure.layout.xaxis.dtick >= 1000 and figure.layout.yaxis.rangemode == "tozero"
    assert figure.layout.yaxis.title.text == "tweets per window"
    many = pd.concat([windows] * 61, ignore_index=True)
    many["window_start"] = pd.date_range("2026-12-07T01:00:00Z", periods=61, freq="min").strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = charts.windows_figure(many, 60.0)  # 61 windows: lines in the same colours
    assert [(t.type, t.line.color) for t in lines.data] == [("scatter", c) for c in charts.KIND_COLOURS.values()]
    sentiment = charts.sentiment_figure(windows, 60.0)
    assert list(sentiment.layout.yaxis.range) == [-1, 1]


def report(batch: int, at: float, query: str = "q", **details: object) -> Progress:
    return Progress(query, batch, 40, 20.0, 25.0, 1500, {"0": batch * 10}, {"0": batch * 10 + 10}, at, **details)  # type: ignore[arg-type]


def test_history_frames_from_progress_records() -> None:
    reports = [
        report(1, T0, latest_offsets={"0": 30, "1": 5}, durations_ms={"addBatch": 1200, "walCommit": 50}),
        report(2, T0 + 2),
    ]  # fmt: skip
    frame = history.frame(reports, {1: 120_000})
    assert list(frame["batch"]) == [1, 2]
    assert frame["addBatch (s)"].tolist()[0] == 1.2 and frame["getBatch (s)"].tolist()[0] == 0.0
    assert pd.isna(frame["addBatch (s)"].tolist()[1])  # a report without durations: no bar, not a zero
    assert frame["watermark gap (s)"].tolist()[0] == 120.0
    lag = history.lag_frame(reports)
    assert lag[["partition", "lag (records)"]].values.tolist() == [[0, 20], [1, 5]]  # latestOffset - start
    duration = charts.batch_duration_figure(frame, 2.0)
    assert duration.data[1].name == "trigger 2 s" and list(duration.data[1].y) == [2.0, 2.0]  # drawn as a line
    operations = charts.operations_figure(frame.dropna(subset=["addBatch (s)"]))
    assert operations.layout.barmode == "stack"
    assert [t.name for t in operations.data] == list(charts.OPERATIONS)
    assert history.latest_query([report(1, T0, "old"), report(0, T0 + 1, "new")]) == [report(0, T0 + 1, "new")]


def test_the_store_gives_the_ranges_reports_sampled_down_oldest_first(tmp_path: Path) -> None:
    store = AggregatesStore(tmp_path / "store.sqlite")
    store.create()
    store.record_progress(report(0, T0))
    with sqlite3.connect(store.path) as connection:  # 999 more in one transaction (record_progress syncs each)
        connection.executemany(
            "INSERT INTO query_progress SELECT query_id, ?, ?, input_rows, input_rows_per_second,"
            " processed_rows_per_second, batch_duration_ms, start_offsets, end_offsets, details"
            " FROM query_progress WHERE batch_id = 0",
            [(batch, T0 + batch) for batch in range(1, 1000)],
        )
    recent = history.read(store, "last 5 minutes", T0 + 999)
    assert [p.batch_id for p in recent] == list(range(699, 1000, 2))  # 301 reports: every second one, the newest in
    assert recent[-1].recorded_at == T0 + 999
    everything = store.progress_since(T0, max_rows=100)
    assert len(everything) == 100 and everything[-1].batch_id == 999  # the newest always in
    assert [p.batch_id for p in everything[:2]] == [9, 19]


def test_top_bars_keep_their_labels_as_text_largest_on_top_one_row_each() -> None:
    frame = pd.DataFrame({"hashtag": ["<b>bold</b>", "kafka"], "tweets": [7, 3]})
    figure = charts.bars_figure(frame, "hashtag", "Top 20 hashtags")
    (bar,) = figure.data
    assert list(bar.y) == ["&lt;b&gt;bold&lt;/b&gt;", "kafka"]  # plotly would draw <b> as markup
    assert list(bar.x) == [7.0, 3.0] and bar.orientation == "h"
    assert figure.layout.yaxis.autorange == "reversed" and figure.layout.yaxis.dtick == 1
    assert figure.layout.xaxis.title.text == "tweets" and figure.layout.title.text == "Top 20 hashtags"
    twenty = pd.DataFrame({"hashtag": [f"t{i}" for i in range(20)], "tweets": range(20)})
    tall = charts.bars_figure(twenty, "hashtag", "")
    assert tall.layout.height == 22 * 20 + 120
