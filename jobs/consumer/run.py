"""The job from start to end: main() reads the options and holds the pid file, run() checks Kafka,
opens the sink and the session, runs the two queries until they end or a stop is asked for."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from backend.aggregates.interfaces import AggregatesWriter
from backend.options.consumer import ConsumerOptions, LocalDefaults, spark_interval
from backend.options.consumer_shape import record_shape, shape_conflict
from backend.options.contract import OptionsError
from backend.runtime.job_files import pid_and_lock_files
from jobs.consumer.kafka_source import explained, kafka_problem, kafka_security_options
from jobs.consumer.options import build_parser, validate
from jobs.consumer.progress import ProgressRecorder, StatusFile, make_listener
from jobs.consumer.queries import start_queries, wait_for
from jobs.consumer.session import JobSession, core_count, ship_packages, spark_master
from jobs.consumer.sinks import BatchWriter, Sink, sink_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("consumer")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ShapeConflict(Exception):
    """This start cannot count into the store and checkpoint it was given; the message says why."""


def run(options: ConsumerOptions) -> int:
    """Check Kafka, open the sink and the session, run the queries until they end or a stop; the exit code."""
    sink = sink_for(options)
    status = StatusFile(options.status_file, starting_status(options, sink))
    status.update()
    stop_requested = threading.Event()
    # Before the Kafka check, which may take its 10 s: a Stop meanwhile is a stop, not a kill.
    stop_on_signals(stop_requested)
    problem = kafka_problem(options)
    if problem is not None:  # nothing started: no store, checkpoint or Spark session
        status.update(state="failed", last_error=problem)
        log.error("the consumer cannot read Kafka: %s", problem)
        return EXIT_FAILED
    if stop_requested.is_set():
        status.update(state="stopped")
        log.info("the consumer stopped before it started")
        return EXIT_OK

    spark = JobSession(options)
    queries: tuple[StreamingQuery, ...] = ()

    def stopping() -> None:
        log.info("stop requested: stopping after the current micro-batch")
        status.update(state="stopping")

    try:
        store = open_store(options, sink, spark.get)
        session = spark.get()
        ship_packages(session)  # before any query: the UDF's workers import backend.tweets.sentiment
        writer = BatchWriter(
            store, options, on_batch=lambda summary: status.update(last_written=summary), cores=core_count(session)
        )
        recorder = ProgressRecorder(store, status, options.topic)
        spark.add_listener(make_listener(recorder))
        previous_query = store.latest_query_id()
        queries = start_queries(session, options, writer)
        warn_if_written_by_another_query(previous_query, queries[0], options)
        status.update(
            state="running",
            master=spark_master(session),
            query_id=str(queries[0].id),
            archive_query_id=str(queries[1].id),
        )
        log.info("reading '%s' from %s into %s", options.topic, options.bootstrap, sink.description)
        error = wait_for(queries, stop_requested, on_stop=stopping)
        recorder.wait_until_recorded(queries)
    except ShapeConflict as conflict:
        status.update(state="failed", last_error=str(conflict))
        log.error("%s", conflict)
        return EXIT_USAGE
    except Exception as exception:  # startup failures: a clear line in the log and the status file
        log.exception("the consumer failed")
        error = f"{type(exception).__name__}: {exception}"
    finally:
        sink.close()
        spark.close(queries)  # a session we did not create (Databricks) goes on: left as we found it
    return finish(status, options, error, stopped=stop_requested.is_set())


def starting_status(options: ConsumerOptions, sink: Sink) -> dict[str, Any]:
    """The status file's first content, before anything starts."""
    return {
        "state": "starting",
        "pid": os.getpid(),
        "topic": options.topic,
        "bootstrap": options.bootstrap,
        **sink.status,
        "trigger": "available-now" if options.available_now else spark_interval(options.trigger_ms or 0),
        "last_batch": None,
        "last_error": None,
        "on_data_loss": options.on_data_loss,
    }


def stop_on_signals(stop_requested: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a stop after the current micro-batch."""

    def request_stop(_signum: int, _frame: Any) -> None:
        stop_requested.set()  # only this: the main thread may be inside a log or status write

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def open_store(options: ConsumerOptions, sink: Sink, spark: Callable[[], SparkSession]) -> AggregatesWriter:
    """The sink's store, created once the store and checkpoint agree with this start (else ShapeConflict)."""
    store = sink.writer(spark)
    # main() checked what can be read without Spark; the Delta ledger is read only now, before anything
    # is created or noted.
    conflict = shape_conflict(options, store) if sink.store_needs_spark else None
    if conflict is not None:
        raise ShapeConflict(conflict)
    store.create()
    record_shape(options)
    sink.start()
    return store


def warn_if_written_by_another_query(
    previous_query: str | None, query: StreamingQuery, options: ConsumerOptions
) -> None:
    if previous_query not in (None, str(query.id)):
        log.warning(
            "the store was written by another query (checkpoint) than %s: records it reads again "
            "(from --starting-offsets) are counted again, or as late",
            options.checkpoint,
        )


def finish(status: StatusFile, options: ConsumerOptions, error: str | None, stopped: bool) -> int:
    """The status file's last word and the exit code."""
    if error is not None:
        error = explained(error, options)
        status.update(state="failed", last_error=error)
        log.error("the consumer failed: %s", error)
        return EXIT_FAILED
    state = "stopped" if stopped else "finished"
    status.update(state=state)
    log.info("the consumer %s", state)
    return EXIT_OK


def local_defaults() -> LocalDefaults:
    """Defaults from the console's settings (imported here: a cluster may not have them)."""
    try:
        from backend.settings import load_settings

        settings = load_settings()
    except Exception as error:  # ImportError on a bare cluster, pydantic's ValidationError on a bad variable
        raise OptionsError(f"cannot read the console's settings for the defaults: {error}") from error
    return LocalDefaults(settings.state_dir, settings.bootstrap, kafka_security_options(settings))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per callback otherwise
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = validate(args, local_defaults)
    except OptionsError as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    conflict = shape_conflict(options)
    if conflict is not None:
        print(f"error: {conflict}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from backend.runtime import processes  # psutil: on a bare cluster there may be none, nor a console
    except ImportError:
        return run(options)
    # One consumer per status file (and so per checkpoint the console uses): the console's
    # Start and a terminal cannot both run one.
    try:
        with processes.hold_pid_file(*pid_and_lock_files(options.status_file)):
            return run(options)
    except processes.AlreadyRunning as error:
        print(f"error: the consumer is {error}", file=sys.stderr)
        return EXIT_USAGE
