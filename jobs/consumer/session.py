"""The job's Spark session: where it comes from (local, spark-submit, a Databricks cluster's
shared one), the settings it runs with, and shipping backend/ and jobs/ to Databricks' executors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.options.consumer import ConsumerOptions
from jobs.consumer.options import inside

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("consumer")


@dataclass(frozen=True)
class SessionPlan:
    """Where the job's session comes from, and what the job may do to it and to its environment."""

    source: str  # "active", "databricks", "spark-submit", "local" or "master"
    stop_at_exit: bool  # only a session this job started: never the cluster's (Databricks) or a host's
    set_worker_environment: bool  # PYSPARK_PYTHON and PYTHONPATH for local mode's Python workers


def session_plan(master: str, has_active_session: bool, environ: Mapping[str, str]) -> SessionPlan:
    """Decide how to get the session; pure (no Spark), so every case is testable.

    On Databricks the cluster's SparkContext is shared with other runs: stopping it at the
    job's exit would stop theirs, and its Python workers' environment is the cluster's.
    """
    from backend.runtime.spark import on_databricks

    if has_active_session:  # an embedding program (or a Databricks notebook): its session, its master
        return SessionPlan("active", stop_at_exit=False, set_worker_environment=False)
    if on_databricks(environ):  # a Databricks job: the cluster's session, whatever --master says
        return SessionPlan("databricks", stop_at_exit=False, set_worker_environment=False)
    if "PYSPARK_GATEWAY_PORT" in environ:  # started by spark-submit: its --master, --jars and --conf count
        return SessionPlan("spark-submit", stop_at_exit=True, set_worker_environment=False)
    if master.startswith("local"):
        return SessionPlan("local", stop_at_exit=True, set_worker_environment=True)
    return SessionPlan("master", stop_at_exit=True, set_worker_environment=False)


def spark_session(options: ConsumerOptions) -> tuple[SparkSession, bool]:
    """The session to use, and whether we created it (then we also stop it)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    plan = session_plan(options.master, active is not None, os.environ)
    if active is not None:
        session = active
    elif plan.source == "databricks":  # the cluster's own session: nothing set on the builder
        session = SparkSession.builder.getOrCreate()
    elif plan.source == "spark-submit":
        session = SparkSession.builder.appName("tweetstream-consumer").getOrCreate()
    elif plan.source == "local":
        from backend.runtime.spark import local_spark_session
        from backend.settings import PROJECT_ROOT

        if plan.set_worker_environment:
            # The Python workers run this interpreter (not whatever python3 the PATH has) and
            # import backend.tweets.sentiment: they inherit these variables.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            paths = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        # Local mode runs everything in the driver's JVM: its heap holds the cached micro-batch.
        conf = {"spark.driver.memory": "2g"}
        if options.sink == "delta" and options.delta_location:
            # The local catalog's own folder (Spark makes it at the start): beside the tables, not in the cwd.
            conf["spark.sql.warehouse.dir"] = inside(options.delta_location, "_warehouse")
        session = local_spark_session("tweetstream-consumer", options.master, conf, delta=options.sink == "delta")
    else:
        session = SparkSession.builder.appName("tweetstream-consumer").master(options.master).getOrCreate()
    for key, value in runtime_conf().items():
        session.conf.set(key, value)
    return session, plan.stop_at_exit


# The folder holding backend/ and jobs/ (the repository here, the job bundle's folder on Databricks).
PROJECT_DIR = Path(__file__).resolve().parents[2]
SHIPPED_PACKAGES = ("backend", "jobs")


def packages_zip(root: Path, folder: Path, packages: Sequence[str] = SHIPPED_PACKAGES) -> Path:
    """Zip the ``.py`` files of ``packages`` under ``root`` into ``folder``; the zip's path.

    The name carries a digest of the content: Spark refuses to replace a file it already
    serves under the same name, and an unchanged bundle reuses its zip. Entries have a fixed
    date, so equal files make equal bytes.
    """
    entries = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                entries.append((path.relative_to(root).as_posix(), path.read_bytes()))
    if not entries:
        raise FileNotFoundError(f"no Python files of {', '.join(packages)} under {root}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"tweetstream-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not target.exists():
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


def ship_packages(
    session: Any, root: Path = PROJECT_DIR, environ: Mapping[str, str] | None = None, folder: Path | None = None
) -> Path | None:
    """On Databricks, send ``backend`` and ``jobs`` to the executors' Python workers as a zip; the zip.

    The launcher puts the bundle's folder on the driver's ``sys.path`` only, and the pandas UDF
    imports backend.tweets.sentiment on the workers. Databricks Runtime 13.3 LTS and above distribute
    folders added to ``sys.path`` themselves; the zip makes it not depend on that. Through the
    SparkContext where one is reachable (dedicated access mode), else as a Spark Connect
    artifact. Elsewhere nothing happens: local mode's workers get PYTHONPATH, and spark-submit
    takes ``--py-files``. None when nothing was shipped.
    """
    from backend.runtime.spark import on_databricks

    if not on_databricks(environ):
        return None
    try:
        zipped = packages_zip(root, folder or Path(tempfile.gettempdir()) / "tweetstream-pyfiles")
    except OSError:  # FileNotFoundError too: the runtime's own distribution may still do
        log.warning("could not zip %s for the executors", ", ".join(SHIPPED_PACKAGES), exc_info=True)
        return None
    try:
        context = session.sparkContext
    except Exception:  # Spark Connect (standard access mode, serverless) has no SparkContext
        context = None
    try:
        if context is not None:
            context.addPyFile(str(zipped))
        elif hasattr(session, "addArtifacts"):
            session.addArtifacts(str(zipped), pyfile=True)
        else:
            log.warning("cannot ship %s to the executors: no SparkContext and no addArtifacts", zipped)
            return None
    except Exception:  # the runtime's own sys.path distribution (13.3 LTS and above) may still do
        log.warning("could not ship %s to the executors", zipped, exc_info=True)
        return None
    log.info("shipped %s to the executors", zipped)
    return zipped


def spark_master(session: SparkSession) -> str | None:
    """The master the session runs on (``local[2]``, ``spark://...``), or None where it does not tell."""
    try:
        return str(session.sparkContext.master)
    except Exception:  # Spark Connect (Databricks serverless) has no SparkContext
        return None


def core_count(session: SparkSession) -> int | None:
    """The cores Spark runs tasks on, or None where the session does not tell (serverless)."""
    try:
        return int(session.sparkContext.defaultParallelism)
    except Exception:
        return None


def runtime_conf() -> dict[str, str]:
    """Settings that may change on a running session (a Databricks one too)."""
    return {
        # Window starts are written as UTC strings: no machine's zone may leak in.
        "spark.sql.session.timeZone": "UTC",
        # An idle stream runs no empty micro-batch: the watermark lives in the store, not in Spark.
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        # One shuffle partition. Our shuffles carry partial aggregates only (a few rows per
        # window, language and hashtag; the map side, one task per Kafka partition, keeps the
        # cores busy), so every further reduce task only adds its fixed cost to each micro-batch.
        # Measured on a batch of 8 000 records, 2 cores: 200 partitions ~1.6-2.2 s (adaptive
        # execution coalesces most), 2 partitions ~1.35 s, 1 partition ~1.2 s.
        "spark.sql.shuffle.partitions": "1",
    }


class JobSession:
    """The job's session, started on first use; closed as it was found (Databricks' goes on)."""

    def __init__(self, options: ConsumerOptions) -> None:
        self.options = options
        self._session: SparkSession | None = None
        self._created = False
        self._listener: Any = None

    def get(self) -> SparkSession:
        if self._session is None:
            self._session, self._created = spark_session(self.options)
        return self._session

    def add_listener(self, listener: Any) -> None:
        self.get().streams.addListener(listener)
        self._listener = listener

    def close(self, queries: Sequence[StreamingQuery]) -> None:
        """Stop the queries, remove the listener, and stop the session if the job created it."""
        for query in queries:
            with contextlib.suppress(Exception):
                if query.isActive:
                    query.stop()
        if self._session is None:
            return
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._session.streams.removeListener(self._listener)
        if self._created:
            with contextlib.suppress(Exception):
                self._session.stop()
