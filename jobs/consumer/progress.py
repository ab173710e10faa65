"""The job's progress: its status file, and each micro-batch's Spark progress report kept in the
store and the status file (through a StreamingQueryListener)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.aggregates.interfaces import AggregatesWriter
from backend.aggregates.records import Progress
from backend.runtime.job_files import write_status
from jobs.consumer.queries import AGGREGATES_QUERY, ARCHIVE_QUERY

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("consumer")


def offsets_by_partition(offsets_json: str | None, topic: str) -> dict[str, int]:
    """Spark's ``{"topic": {"0": 12, ...}}`` offsets -> ``{"0": 12, ...}`` for our topic."""
    try:
        parsed = json.loads(offsets_json or "")
    except ValueError:  # the first batch of a query has no start offsets ("None")
        return {}
    return {str(p): int(o) for p, o in parsed.get(topic, {}).items()} if isinstance(parsed, dict) else {}


class StatusFile:
    """The job's status file, updated from the main thread and from Spark's listener thread."""

    def __init__(self, path: Path, initial: dict[str, Any]) -> None:
        self.path = path
        self._status = dict(initial)
        self._lock = threading.Lock()

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._status.update(changes)
            write_status(self.path, self._status)


class ProgressRecorder:
    """Keeps every micro-batch's progress in the store and the status file (Spark's listener calls it)."""

    def __init__(self, store: AggregatesWriter, status: StatusFile, topic: str) -> None:
        self.store = store
        self.status = status
        self.topic = topic
        self._recorded: dict[str, int] = {}  # query id -> latest batch id recorded
        self._changed = threading.Condition()

    def record(self, progress: Any) -> None:
        if progress.name not in (AGGREGATES_QUERY, ARCHIVE_QUERY):  # another query of a shared session
            return
        try:
            source = progress.sources[0] if progress.sources else None
            row = Progress(
                query_id=str(progress.id),
                batch_id=int(progress.batchId),
                input_rows=int(progress.numInputRows),
                input_rows_per_second=float(progress.inputRowsPerSecond or 0.0),
                processed_rows_per_second=float(progress.processedRowsPerSecond or 0.0),
                batch_duration_ms=int(progress.batchDuration),
                start_offsets=offsets_by_partition(source.startOffset if source else None, self.topic),
                end_offsets=offsets_by_partition(source.endOffset if source else None, self.topic),
                recorded_at=time.time(),
                latest_offsets=offsets_by_partition(getattr(source, "latestOffset", None), self.topic),
                durations_ms={str(k): int(v) for k, v in (progress.durationMs or {}).items()},
            )
            summary = {
                "batch_id": row.batch_id,
                "input_rows": row.input_rows,
                "input_rows_per_second": row.input_rows_per_second,
                "processed_rows_per_second": row.processed_rows_per_second,
                "batch_duration_ms": row.batch_duration_ms,
                "end_offsets": row.end_offsets,
            }
            if progress.name == AGGREGATES_QUERY:
                self.store.record_progress(row)
                self.status.update(last_batch=summary)
            else:
                self.status.update(archive_last_batch=summary)
        except Exception:  # a listener must never take the query down
            log.exception("could not record the progress of a batch")
        finally:
            with self._changed:
                self._recorded[str(progress.id)] = int(progress.batchId)
                self._changed.notify_all()

    def wait_until_recorded(self, queries: Sequence[StreamingQuery], timeout: float = 10.0) -> None:
        """Wait for the reports of the queries' last batches: Spark delivers them asynchronously,
        and stopping the session would drop those still queued."""
        deadline = time.monotonic() + timeout
        with self._changed:
            for query in queries:
                last = query.lastProgress
                if last is None:
                    continue
                while self._recorded.get(str(query.id), -1) < last["batchId"] and time.monotonic() < deadline:
                    self._changed.wait(max(0.0, deadline - time.monotonic()))


def make_listener(recorder: ProgressRecorder) -> Any:
    """The StreamingQueryListener that hands each progress report to ``recorder``."""
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressListener(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:
            pass

        def onQueryProgress(self, event: Any) -> None:
            recorder.record(event.progress)

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            pass

    return ProgressListener()
