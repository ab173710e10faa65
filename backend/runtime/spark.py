"""SparkSession with Spark's Kafka connector: local mode here, the cluster's own on Databricks.

On a cluster (spark-submit, Databricks) the connector comes from the cluster's libraries;
here it comes from the jars `make setup` resolved into .cache/jars/spark-kafka. On Databricks
(DATABRICKS_RUNTIME_VERSION is set) the cluster's session exists already: it is reused as it
is, and only session-level SQL settings are applied to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def on_databricks(environ: Mapping[str, str] | None = None) -> bool:
    """True on a Databricks cluster's driver, where the runtime sets DATABRICKS_RUNTIME_VERSION."""
    return bool((os.environ if environ is None else environ).get("DATABRICKS_RUNTIME_VERSION"))


def delta_conf() -> dict[str, str]:
    """What a local session needs to read and write Delta tables (Databricks' sessions have it built in)."""
    return {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # A table's log is read with this many tasks (default 50): a few suit one small machine.
        "spark.databricks.delta.snapshotPartitions": "2",
    }


def local_session_conf(master: str = "local[*]", delta: bool = False) -> dict[str, str]:
    """Spark settings for one small machine; with ``delta``, also Delta Lake's jars and extension."""
    # Imported here: backend.runtime.jars reads the console's settings, which a cluster may not have.
    from backend.runtime.jars import delta_jars, spark_kafka_jars

    cores = os.cpu_count() or 2
    jars = [*spark_kafka_jars(), *(delta_jars() if delta else [])]
    return {
        "spark.master": master,
        "spark.jars": ",".join(dict.fromkeys(str(jar) for jar in jars)),
        # Window starts are stored as UTC strings: no machine's local zone may leak in.
        "spark.sql.session.timeZone": "UTC",
        # The default of 200 shuffle partitions costs far more than it brings on a few cores.
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        **(delta_conf() if delta else {}),
    }


def databricks_session_conf(extra_conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings for the Databricks cluster's existing session: SQL settings only.

    Master, jars, memory and UI belong to the cluster (its libraries bring the Kafka
    connector); setting them on a running session would do nothing or mislead.
    """
    sql_only = {key: value for key, value in (extra_conf or {}).items() if key.startswith("spark.sql.")}
    return {"spark.sql.session.timeZone": "UTC", **sql_only}


def session_conf(
    master: str = "local[*]",
    extra_conf: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    delta: bool = False,
) -> dict[str, str]:
    """The settings local_spark_session applies: the cluster's session on Databricks, else local mode."""
    if on_databricks(environ):
        return databricks_session_conf(extra_conf)
    return {**local_session_conf(master, delta), **(extra_conf or {})}


def local_spark_session(
    app_name: str, master: str = "local[*]", extra_conf: dict[str, str] | None = None, delta: bool = False
) -> SparkSession:
    """A local-mode session with the connector jars; on Databricks, the cluster's session."""
    from pyspark.sql import SparkSession

    if on_databricks():
        session = SparkSession.builder.getOrCreate()
        for key, value in databricks_session_conf(extra_conf).items():
            session.conf.set(key, value)
        return session
    if master.startswith("local"):
        # Spark otherwise picks the machine's first network interface and warns about it.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    for key, value in session_conf(master, extra_conf, delta=delta).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
