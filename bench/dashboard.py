"""``python -m bench dashboard``: one rerun of the Consumer page and of the Overview over a store holding 24 hours.

It times each store read the page makes, then reruns of ``pages/consumer.py`` in Streamlit's ``AppTest`` at each of
the page's time ranges (its history charts at their longest, 24 hours), and of ``pages/overview.py``, over the filled
store and over an empty one; the target is a rerun of at most 150 ms.
Printed, never asserted. How the store is filled and the reruns timed: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np

from backend.aggregates.records import BatchResult, DeadLetter, KeyCount, Progress, WindowCounts, iso_utc
from backend.aggregates.sqlite_store import AggregatesStore
from bench.support import PROJECT_ROOT, free_ports, print_table

TARGET_MS = 150.0
PAGE = PROJECT_ROOT / "pages" / "consumer.py"
OVERVIEW = PROJECT_ROOT / "pages" / "overview.py"
HISTORY_RANGE = "last 24 hours"  # the Consumer page's history charts at their longest
QUERY_ID = "bench-dashboard-query"
TRIGGER_S = 5  # the consumer's default trigger: one progress report per 5 s
VOCABULARY = 50_000
ZIPF_EXPONENT = 1.1
HASHTAGS_PER_TWEET = 0.9  # the synthetic producer's mean (0, 1, 2 or 3 hashtags: 45/30/15/10 %)

# ~30 languages in shares roughly like X's (per-window counts are drawn around them).
LANGUAGES = {
    "en": 0.38, "ja": 0.14, "es": 0.08, "und": 0.07, "pt": 0.05, "ar": 0.04, "in": 0.03, "ko": 0.03,
    "fr": 0.025, "tr": 0.025, "th": 0.02, "de": 0.015, "it": 0.012, "ru": 0.012, "tl": 0.01, "hi": 0.01,
    "fa": 0.008, "nl": 0.007, "pl": 0.006, "zh": 0.006, "ca": 0.004, "sv": 0.004, "ur": 0.004,
    "el": 0.003, "uk": 0.003, "cs": 0.002, "fi": 0.002, "da": 0.002, "no": 0.002, "ro": 0.002,
}  # fmt: skip


@dataclass(frozen=True)
class Filled:
    windows: int
    hashtag_rows: int
    language_rows: int
    tweets: int
    distinct_hashtags: int
    progress_rows: int
    dead_letters: int
    seconds: float
    write_batch_seconds: float  # of which in write_batch


def _window_start(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class _WindowDraws:
    """Draws one window's counts: hashtags Zipf-distributed over VOCABULARY names, languages in LANGUAGES' shares."""

    def __init__(self, seed: int, hashtags_per_window: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.hashtags_per_window = hashtags_per_window
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** ZIPF_EXPONENT
        self.cumulative = np.cumsum(weights) / weights.sum()
        self.names = [f"tag{rank}" for rank in range(VOCABULARY)]
        self.lang_names = list(LANGUAGES)
        lang_shares = np.array(list(LANGUAGES.values()))
        self.lang_shares = lang_shares / lang_shares.sum()
        self.seen: set[int] = set()  # the hashtags drawn so far, by rank

    def add_window(self, batch: _BatchParts, start: datetime, dead_offset: int) -> int:
        """Add one window starting at ``start`` to ``batch``; its tweets."""
        rng = self.rng
        key = iso_utc(start)
        # Hashtag uses drawn one by one until the window has `hashtags_per_window` distinct ones.
        draws = np.searchsorted(self.cumulative, rng.random(self.hashtags_per_window * 12))
        _, first_seen = np.unique(draws, return_index=True)
        used = draws[: np.sort(first_seen)[self.hashtags_per_window - 1] + 1]
        ranks, counts = np.unique(used, return_counts=True)
        self.seen.update(ranks.tolist())
        batch.hashtags.extend(KeyCount(key, self.names[r], int(c)) for r, c in zip(ranks, counts, strict=True))
        tweets = int(len(used) / HASHTAGS_PER_TWEET * rng.uniform(0.95, 1.05))
        # every language at least once
        lang_counts = rng.multinomial(tweets - len(self.lang_names), self.lang_shares) + 1
        batch.languages.extend(
            KeyCount(key, lang, int(c)) for lang, c in zip(self.lang_names, lang_counts, strict=True)
        )
        mood = float(rng.normal(0.06, 0.05))
        batch.windows.append(
            WindowCounts(
                window_start=key,
                window_end=iso_utc(start + timedelta(minutes=1)),
                tweets=tweets,
                retweets=int(tweets * rng.uniform(0.30, 0.36)),
                replies=int(tweets * rng.uniform(0.15, 0.19)),
                quotes=int(tweets * rng.uniform(0.04, 0.06)),
                sentiment_sum=mood * tweets,
            )
        )
        if rng.random() < 0.1:
            batch.late.append(KeyCount(key, "", int(rng.integers(1, 20))))
        if rng.random() < 0.05:
            batch.dead.append(DeadLetter("tweets", int(rng.integers(0, 4)), dead_offset, "not JSON", "{oops"))
        return tweets


@dataclass
class _BatchParts:
    """The rows of one written batch, as they are drawn."""

    windows: list[WindowCounts] = field(default_factory=list)
    hashtags: list[KeyCount] = field(default_factory=list)
    languages: list[KeyCount] = field(default_factory=list)
    late: list[KeyCount] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    def result(self, batch_id: int, last_end: datetime) -> BatchResult:
        """The batch as the job would write it, its watermark two minutes behind its last window's end."""
        return BatchResult(
            query_id=QUERY_ID,
            batch_id=batch_id,
            windows=self.windows,
            hashtags=self.hashtags,
            languages=self.languages,
            late=self.late,
            dead_letters=self.dead,
            max_event_time_ms=int(last_end.timestamp() * 1000),
            watermark_ms=int((last_end - timedelta(minutes=2)).timestamp() * 1000),
        )


def fill_store(
    store: AggregatesStore,
    end: datetime,
    hours: float = 24,
    hashtags_per_window: int = 1000,
    batch_windows: int = 60,
    seed: int = 1,
) -> Filled:
    """Write ``hours`` of one-minute windows ending at ``end`` (a minute boundary) into ``store``."""
    began = time.perf_counter()
    draws = _WindowDraws(seed, hashtags_per_window)
    store.create()
    count = round(hours * 60)
    first = end - timedelta(minutes=count)
    totals = {"tweets": 0, "hashtag_rows": 0, "language_rows": 0, "progress": 0, "dead": 0}
    offset = 0
    writing = 0.0
    for batch_id, batch_first in enumerate(range(0, count, batch_windows)):
        batch = _BatchParts()
        for index in range(batch_first, min(count, batch_first + batch_windows)):
            totals["tweets"] += draws.add_window(batch, first + timedelta(minutes=index), offset + index)
        offset += sum(w.tweets for w in batch.windows) + len(batch.dead)
        last_end = first + timedelta(minutes=min(count, batch_first + batch_windows))
        began_writing = time.perf_counter()
        store.write_batch(batch.result(batch_id, last_end))
        writing += time.perf_counter() - began_writing
        totals["hashtag_rows"] += len(batch.hashtags)
        totals["language_rows"] += len(batch.languages)
        totals["dead"] += len(batch.dead)
    totals["progress"] = _fill_progress(store, first, end, draws.rng)
    return Filled(
        windows=count,
        hashtag_rows=totals["hashtag_rows"],
        language_rows=totals["language_rows"],
        tweets=totals["tweets"],
        distinct_hashtags=len(draws.seen),
        progress_rows=totals["progress"],
        dead_letters=totals["dead"],
        seconds=time.perf_counter() - began,
        write_batch_seconds=writing,
    )


def _fill_progress(store: AggregatesStore, first: datetime, end: datetime, rng: np.random.Generator) -> int:
    """One progress report per trigger over [first, end), as the job's listener leaves them."""
    offsets = {"0": 0, "1": 0, "2": 0, "3": 0}
    moments = np.arange(first.timestamp(), end.timestamp(), TRIGGER_S)
    rows = rng.poisson(47 * TRIGGER_S, len(moments))
    # record_progress is one transaction per report, as in the job; the file is synced each time.
    for batch_id, (moment, input_rows) in enumerate(zip(moments.tolist(), rows.tolist(), strict=True)):
        start = dict(offsets)
        for partition in offsets:
            offsets[partition] += input_rows // 4
        duration = int(rng.integers(600, 1200))
        store.record_progress(
            Progress(
                query_id=QUERY_ID,
                batch_id=batch_id,
                input_rows=input_rows,
                input_rows_per_second=input_rows / TRIGGER_S,
                processed_rows_per_second=input_rows / 0.8,
                batch_duration_ms=duration,
                start_offsets=start,
                end_offsets=dict(offsets),
                recorded_at=moment + TRIGGER_S,
                # What the job's listener keeps for the history charts: the topic a little ahead, Spark's durations.
                latest_offsets={p: o + int(rng.integers(0, 20)) for p, o in offsets.items()},
                durations_ms={
                    "latestOffset": 5,
                    "getBatch": 2,
                    "queryPlanning": 40,
                    "addBatch": duration - 120,
                    "walCommit": 35,
                    "commitOffsets": 30,
                },
            )
        )
    return len(moments)


# -- the store reads the page makes --------------------------------------------------------


def store_reads(store: AggregatesStore, since: datetime, until: datetime) -> dict[str, Callable[[], object]]:
    """The reads of one rerun of the Consumer page over [since, until), by name."""
    return {
        "windows": lambda: store.windows(since, until),
        "sentiment_over_time": lambda: store.sentiment_over_time(since, until),
        "top_hashtags(limit=10)": lambda: store.top_hashtags(since, until, limit=10),
        "top_hashtags(limit=20)": lambda: store.top_hashtags(since, until, limit=20),
        "languages": lambda: store.languages(since, until),
        "late_tweets": lambda: store.late_tweets(since, until),
        "dead_letter_count": store.dead_letter_count,
        "dead_letter_sample(20)": lambda: store.dead_letter_sample(20),
        "latest_progress": store.latest_progress,
        "progress(100)": lambda: store.progress(100),
        "progress_since(24 h, 240)": lambda: store.progress_since(until.timestamp() - 86400, 240),
    }


def time_call(call: Callable[[], object], runs: int) -> float:
    """Median milliseconds of ``runs`` calls, after one untimed call."""
    call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


# -- the page -----------------------------------------------------------------------------


def _range_picker(app, key: str = "consumer-range"):  # type: ignore[no-untyped-def]
    """The page's selectbox of key ``key``, else (an older page) one labelled "range", if any."""
    for widget in app.selectbox:
        if widget.key == key:
            return widget
    for widget in app.selectbox:
        if "range" in str(widget.label).lower() and widget.key != "consumer-history-range":
            return widget
    return None


class StoreClock:
    """Milliseconds the page's script spends in the store's reads (the monitor thread's reads left out)."""

    READS = (
        "windows", "sentiment_over_time", "top_hashtags", "languages", "late_tweets", "dead_letter_count",
        "dead_letter_sample", "progress", "latest_progress", "progress_since", "latest_window_start",
    )  # fmt: skip

    def __init__(self) -> None:
        self.ms = 0.0
        self._local = threading.local()
        self._originals: dict[str, Callable[..., object]] = {}

    def __enter__(self) -> StoreClock:
        for name in self.READS:
            self._originals[name] = original = getattr(AggregatesStore, name)
            setattr(AggregatesStore, name, self._timed(original))
        return self

    def __exit__(self, *_: object) -> None:
        for name, original in self._originals.items():
            setattr(AggregatesStore, name, original)

    def _timed(self, original: Callable[..., object]) -> Callable[..., object]:
        clock = self

        @functools.wraps(original)
        def timed(*args: object, **kwargs: object) -> object:
            depth = getattr(clock._local, "depth", 0)
            if depth or threading.current_thread().name.startswith("tweetstream-monitor"):
                return original(*args, **kwargs)  # inside another read (counted there), or not the page
            clock._local.depth = 1
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.ms += (time.perf_counter() - began) * 1000
                clock._local.depth = 0

        return timed


@dataclass(frozen=True)
class PageTiming:
    time_range: str
    rerun_ms: float  # median
    store_ms: float  # median of the store reads' share of each rerun
    error: str


def time_page(state_dir: Path, runs: int, page: Path = PAGE) -> list[PageTiming]:
    """Reruns of ``page`` over ``state_dir``: one ``PageTiming`` per time range it offers."""
    from streamlit.testing.v1 import AppTest

    from backend.console import monitor

    os.environ["TWEETSTREAM_STATE_DIR"] = str(state_dir)
    # Kafka on ports where nothing listens, whatever broker runs here: the same page every time
    # (its background monitor gets "connection refused" at once; the page never waits on Kafka).
    os.environ["TWEETSTREAM_BOOTSTRAP_SERVERS"] = ""
    kafka_port, controller_port = free_ports(2)
    os.environ["TWEETSTREAM_KAFKA_PORT"] = str(kafka_port)
    os.environ["TWEETSTREAM_KAFKA_CONTROLLER_PORT"] = str(controller_port)
    try:
        with _one_script_cache():
            return _time_reruns(AppTest.from_file(str(page), default_timeout=120), runs)
    finally:
        monitor.close_all()  # the page's background sampler stops with its measurement


@contextlib.contextmanager
def _one_script_cache() -> Iterator[None]:
    """AppTest compiles the page afresh at every run (a new ScriptCache each time), where the server keeps one
    cache for all reruns and sessions: one shared cache here, so the compile is not timed as if every rerun paid it."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    with (
        mock.patch.object(app_test, "ScriptCache", lambda: shared),
        mock.patch.object(local_script_runner, "ScriptCache", lambda: shared),
    ):
        yield


def _time_reruns(app, runs: int) -> list[PageTiming]:  # type: ignore[no-untyped-def]
    app.run()  # warm-up: imports, first connection, plotly's templates
    if app.exception:
        return [PageTiming("default", float("nan"), float("nan"), str(app.exception[0].message)[:200])]
    history = next((widget for widget in app.selectbox if widget.key == "consumer-history-range"), None)
    if history is not None:
        history.set_value(HISTORY_RANGE)
        app.run()
    picker = _range_picker(app)
    choices = [None] if picker is None else list(picker.options)
    results = []
    for choice in choices:
        label = "default"
        if picker is not None:
            picker = _range_picker(app)
            picker.set_value(choice)
            label = str(choice)
            app.run()  # warm-up at this range
        times, store_times = [], []
        for _ in range(runs):
            with StoreClock() as clock:
                began = time.perf_counter()
                app.run()
                times.append((time.perf_counter() - began) * 1000)
            store_times.append(clock.ms)
        error = str(app.exception[0].message)[:200] if app.exception else ""
        results.append(PageTiming(label, statistics.median(times), statistics.median(store_times), error))
    return results


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24, help="hours of one-minute windows (default 24)")
    parser.add_argument("--hashtags", type=int, default=1000, help="distinct hashtags per window (default 1000)")
    parser.add_argument("--batch-windows", type=int, default=60, help="windows per written batch (default 60)")
    parser.add_argument("--runs", type=int, default=20, help="timed reruns per measurement (default 20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--state-dir", type=Path, help="fill (or reuse, if it has a store) this folder and keep it")
    parser.add_argument("--reads-only", action="store_true", help="time the store reads, not the page")
    return parser.parse_args(argv)


def _filled_store(folder: Path, args: argparse.Namespace) -> tuple[AggregatesStore, datetime]:
    """The store in ``folder``, filled unless it holds windows already; and the end of its last window."""
    store = AggregatesStore(folder / "aggregates.sqlite")
    existing = store.windows()
    if existing:
        end = datetime.fromisoformat(existing[-1].window_end.replace("Z", "+00:00"))
        store.create()  # a store of an older schema is brought up to date, as the job would
        print(f"reusing {store.path} (windows up to {iso_utc(end)})")
        return store, end
    end = _window_start(datetime.now(UTC))
    info = fill_store(store, end, args.hours, args.hashtags, args.batch_windows, args.seed)
    print(
        f"filled {store.path} in {info.seconds:.1f} s ({info.write_batch_seconds:.1f} s in write_batch): "
        f"{info.windows} windows, {info.tweets:,} tweets, "
        f"{info.hashtag_rows:,} hashtag rows ({info.distinct_hashtags:,} distinct hashtags), "
        f"{info.language_rows:,} language rows, {info.progress_rows:,} progress reports, "
        f"{info.dead_letters} dead letters; {store.path.stat().st_size / 1e6:.0f} MB"
    )
    return store, end


def _print_store_reads(store: AggregatesStore, empty: AggregatesStore, end: datetime, args: argparse.Namespace) -> None:
    """Each read of the page timed over the last hour and the whole range of ``store``, and over ``empty``."""
    hour = (end - timedelta(hours=1), end)
    whole = (end - timedelta(hours=args.hours), end)
    rows = []
    one_hour = store_reads(store, *hour)
    all_hours = store_reads(store, *whole)
    nothing = store_reads(empty, *whole)
    for name in one_hour:
        rows.append(
            [
                name,
                f"{time_call(one_hour[name], args.runs):.2f}",
                f"{time_call(all_hours[name], args.runs):.2f}",
                f"{time_call(nothing[name], args.runs):.3f}",
            ]
        )
    print(f"\nstore reads, median ms of {args.runs} (after one warm-up call):")
    print_table(["read", "last 1 h", f"last {args.hours:g} h", "empty store"], rows)


def _print_page_timings(filled_dir: Path, empty_dir: Path, args: argparse.Namespace) -> None:
    """The page's reruns over the filled store against the empty one, per time range, and the verdict."""
    filled = time_page(filled_dir, args.runs)
    blank = {timing.time_range: timing for timing in time_page(empty_dir, args.runs)}
    # The Overview has no range: its one rerun, named so in the table.
    filled += [dataclasses.replace(t, time_range="Overview") for t in time_page(filled_dir, args.runs, OVERVIEW)]
    blank |= {"Overview": dataclasses.replace(time_page(empty_dir, args.runs, OVERVIEW)[0], time_range="Overview")}
    print(
        f"\npages/consumer.py (history charts over the {HISTORY_RANGE}) and pages/overview.py reruns "
        f"(AppTest, server side), median ms of {args.runs} after a warm-up run:"
    )
    table = []
    for timing in filled:
        base = blank.get(timing.time_range)
        base_ms = base.rerun_ms if base is not None else float("nan")
        table.append(
            [
                timing.time_range,
                f"{timing.rerun_ms:.1f}",
                f"{timing.store_ms:.1f}",
                f"{base_ms:.1f}",
                f"{timing.rerun_ms / base_ms:.2f}",
                "yes" if timing.rerun_ms <= TARGET_MS else "NO",
            ]
        )
    for name, timings in (("filled", filled), ("empty", list(blank.values()))):
        for timing in timings:
            if timing.error:
                print(f"  the page raised with the {name} store at {timing.time_range}: {timing.error}")
    print_table(
        [
            "time range",
            f"{args.hours:g} h in the store (ms)",
            "of which store reads (ms)",
            "empty store (ms)",
            "ratio filled/empty",
            f"≤ {TARGET_MS:.0f} ms",
        ],
        table,
    )
    worst = max(timing.rerun_ms for timing in filled)
    verdict = "met" if worst <= TARGET_MS else "NOT met"
    print(
        f"\ntarget: a rerun ≤ {TARGET_MS:.0f} ms with {args.hours:g} h in the store; slowest {worst:.1f} ms: {verdict}"
    )


def main(argv: list[str]) -> int:
    args = _options(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tweetstream-bench-") as scratch:
        filled_dir = args.state_dir or Path(scratch) / "filled"
        empty_dir = Path(scratch) / "empty"
        empty_dir.mkdir()
        filled_dir.mkdir(parents=True, exist_ok=True)
        store, end = _filled_store(filled_dir, args)
        empty = AggregatesStore(empty_dir / "aggregates.sqlite")
        empty.create()  # created by the job, no batch yet
        _print_store_reads(store, empty, end, args)
        if args.reads_only or not PAGE.exists():
            if not args.reads_only:
                print(f"\n{PAGE.relative_to(PROJECT_ROOT)} does not exist yet: only the store reads were timed.")
            return 0
        _print_page_timings(filled_dir, empty_dir, args)
    load = f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}"
    print(f"machine load (1-min average) at start / end: {load} on {os.cpu_count()} cores")
    return 0
