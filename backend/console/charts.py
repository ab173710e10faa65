"""Charts a person reads at a glance: plotly figures for the pages, with the same rules everywhere.

Rates start at 0 (a steady 99.99 events/s must not fill the chart as a band of noise), time axes
tick in whole seconds or minutes as the range needs, a window is a bar as wide as the window (one
window of data reads as well as a hundred), tweets/retweets/replies/quotes keep their colours, and
every axis title has its unit. Pure (no Streamlit): unit-tested in tests/unit/test_charts.py.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# The same colour for each kind of tweet on every chart (plotly's default palette, fixed per kind).
KIND_COLOURS: dict[str, str] = {
    "tweets": "#1f77b4",
    "retweets": "#2ca02c",
    "replies": "#ff7f0e",
    "quotes": "#9467bd",
}
INPUT_COLOUR = "#1f77b4"
PROCESSED_COLOUR = "#2ca02c"
TRIGGER_COLOUR = "#d62728"
# Spark's durationMs keys drawn stacked, in the order a micro-batch runs them.
OPERATIONS = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets")

# Tick steps, in seconds: whole seconds, then whole minutes, then whole hours.
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 8
MAX_BARS = 60  # windows drawn as bars; more would be slivers (and cost the rerun time): lines
HEIGHT = 300
MARGIN = {"t": 40, "b": 10}


def tick_step_s(span_s: float) -> int:
    """The smallest whole step that puts at most MAX_TICKS ticks on ``span_s`` seconds."""
    for step in _STEPS_S:
        if span_s / step <= MAX_TICKS:
            return step
    return _STEPS_S[-1]


def time_axis(start: datetime, end: datetime, title: str = "time (UTC)") -> dict:
    """A date axis over [start, end] ticked at whole seconds or minutes (never 02:24:59.999)."""
    span_s = max(1.0, (end - start).total_seconds())
    step = tick_step_s(span_s)
    if step < 60:
        tickformat = "%H:%M:%S"
    elif span_s <= 86400:
        tickformat = "%H:%M"
    else:
        tickformat = "%b %d %H:%M"
    return {"title": title, "type": "date", "dtick": step * 1000, "tickformat": tickformat, "range": [start, end]}


def rate_axis(title: str) -> dict:
    """A rate's axis: from 0, whatever the values (a flat rate reads as flat)."""
    return {"title": title, "rangemode": "tozero", "range": None, "autorangeoptions": {"include": 0}}


def _figure(
    traces: Sequence[object], title: str, x: dict, y: dict, height: int = HEIGHT, **layout: object
) -> go.Figure:
    """A figure built with its layout in one go: update_layout costs ~4x more (8 ms against 2 ms a chart)."""
    return go.Figure(
        data=list(traces),
        layout={
            "title": title,
            "height": height,
            "margin": MARGIN,
            "xaxis": x,
            "yaxis": y,
            "legend": {"orientation": "h", "y": -0.25},
            **layout,
        },
    )


def padded(times: Sequence[datetime], pad: timedelta) -> tuple[datetime, datetime]:
    """The range that shows every time with ``pad`` on each side (a single time gets a readable span)."""
    return min(times) - pad, max(times) + pad


def rates_figure(
    frame: pd.DataFrame, value: str, title: str, colour_by: str | None = None, height: int = HEIGHT - 20
) -> go.Figure:
    """Rates over time (``frame``: "time (UTC)", ``value`` and optionally ``colour_by`` in long form)."""
    groups = [(None, frame)] if colour_by is None else list(frame.groupby(colour_by, sort=True))
    traces = [
        go.Scatter(x=part["time (UTC)"], y=part[value], mode="lines", name=str(name) if name is not None else value)
        for name, part in groups
    ]
    times = list(frame["time (UTC)"]) or [datetime.now().astimezone()]
    start, end = padded(times, timedelta(seconds=1))
    return _figure(traces, title, time_axis(start, end), rate_axis(value), height)


def windows_figure(windows: pd.DataFrame, window_s: float) -> go.Figure:
    """Tweets per window, the kinds in their colours: grouped bars, each group a window wide, while a bar
    can be seen (up to MAX_BARS windows); lines beyond, centred on the windows."""
    starts = pd.to_datetime(windows["window_start"], utc=True)
    middles = _ms(starts) + int(window_s * 500)  # centred on its window
    if len(windows) <= MAX_BARS:
        traces = [
            go.Bar(x=middles, y=_values(windows[kind]), name=kind, marker_color=colour, width=window_s * 1000 * 0.9 / 4)
            for kind, colour in KIND_COLOURS.items()
        ]
    else:
        traces = [
            go.Scatter(x=middles, y=_values(windows[kind]), name=kind, mode="lines", line_color=colour)
            for kind, colour in KIND_COLOURS.items()
        ]
    start, end = padded(starts.tolist(), timedelta(seconds=window_s))
    return _figure(
        traces,
        "Tweets per window",
        time_axis(start, end + timedelta(seconds=window_s), "window start (UTC)"),
        rate_axis("tweets per window"),
        barmode="group",
        bargap=0.1,
    )


def sentiment_figure(windows: pd.DataFrame, window_s: float) -> go.Figure:
    starts = pd.to_datetime(windows["window_start"], utc=True)
    trace = go.Scatter(
        x=_ms(starts),
        y=_values(windows["sentiment_avg"]),
        mode="lines+markers",
        name="mean",
        marker_color=KIND_COLOURS["tweets"],
    )
    start, end = padded(starts.tolist(), timedelta(seconds=window_s))
    return _figure(
        [trace],
        "Mean sentiment per window",
        time_axis(start, end, "window start (UTC)"),
        {"title": "VADER compound (-1 to 1)", "range": [-1, 1]},
    )


# -- the Consumer page's history, from the job's progress records --------------------------------


def bars_figure(frame: pd.DataFrame, label: str, title: str) -> go.Figure:
    """Tweets per ``label`` as horizontal bars, largest on top, 22 px a bar so every label shows (plotly skips
    category labels that would overlap). graph_objects: plotly.express costs ~10x more per chart."""
    # Escaped: plotly reads <a>, <b>, <br>... in labels as markup, and a hashtag is anyone's text.
    trace = go.Bar(x=_values(frame["tweets"]), y=frame[label].map(html.escape), orientation="h")
    return _figure(
        [trace],
        title,
        {"title": "tweets"},
        {"autorange": "reversed", "title": label, "dtick": 1},
        height=max(HEIGHT, 22 * len(frame) + 120),
    )


def throughput_figure(history: pd.DataFrame) -> go.Figure:
    traces = [
        go.Scatter(x=_ms(history["time"]), y=_values(history["input rows/s"]), name="input", line_color=INPUT_COLOUR),
        go.Scatter(
            x=_ms(history["time"]),
            y=_values(history["processed rows/s"]),
            name="processed",
            line_color=PROCESSED_COLOUR,
        ),
    ]
    return _figure(traces, "Input vs processed rows per second", _history_axis(history), rate_axis("rows/s"))


def batch_duration_figure(history: pd.DataFrame, trigger_s: float | None) -> go.Figure:
    traces = [go.Bar(x=_ms(history["time"]), y=_values(history["batch duration (s)"]), name="batch duration")]
    axis = _history_axis(history)
    if trigger_s is not None:  # a batch above this line keeps the next one waiting (a trace: add_hline costs ~10x)
        traces.append(
            go.Scatter(
                x=axis["range"],
                y=[trigger_s, trigger_s],
                mode="lines",
                name=f"trigger {trigger_s:g} s",
                line={"color": TRIGGER_COLOUR, "dash": "dash"},
            )
        )
    return _figure(traces, "Batch duration", axis, rate_axis("batch duration (s)"))


def operations_figure(history: pd.DataFrame) -> go.Figure:
    traces = [
        go.Bar(x=_ms(history["time"]), y=_values(history[f"{name} (s)"]), name=name)
        for name in OPERATIONS
        if f"{name} (s)" in history
    ]
    return _figure(
        traces, "Operation durations (stacked)", _history_axis(history), rate_axis("duration (s)"), barmode="stack"
    )


def watermark_figure(history: pd.DataFrame) -> go.Figure:
    trace = go.Scatter(
        x=_ms(history["time"]), y=_values(history["watermark gap (s)"]), mode="lines+markers", name="gap"
    )
    return _figure(
        [trace], "Watermark gap (newest event time minus watermark)", _history_axis(history), rate_axis("gap (s)")
    )


def lag_figure(lag: pd.DataFrame) -> go.Figure:
    traces = [
        go.Scatter(x=_ms(part["time"]), y=_values(part["lag (records)"]), mode="lines", name=f"partition {partition}")
        for partition, part in lag.groupby("partition", sort=True)
    ]
    return _figure(traces, "Lag per partition (records)", _history_axis(lag), rate_axis("lag (records)"))


def _ms(times: pd.Series) -> np.ndarray:
    """Times as milliseconds since the epoch (a date axis reads them): sent as a typed array, cheaper than
    plotly's conversion of each timestamp to text."""
    return pd.to_datetime(times, utc=True).astype("int64").to_numpy() // 1_000_000


def _values(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype=float)


def _history_axis(history: pd.DataFrame) -> dict:
    times = list(history["time"])
    start, end = padded(times, timedelta(seconds=2))
    return time_axis(start, end)
