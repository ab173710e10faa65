"""SparkSession with Spark's Kafka connector, for the local target (pyspark in ``local[*]``).

On a cluster (spark-submit, Databricks) the connector comes from the cluster's libraries;
here it comes from the jars `make setup` resolved into .cache/jars/spark-kafka.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from backend.jars import spark_kafka_jars

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_session_conf(master: str = "local[*]") -> dict[str, str]:
    """Spark settings for one small machine."""
    cores = os.cpu_count() or 2
    return {
        "spark.master": master,
        "spark.jars": ",".join(str(jar) for jar in spark_kafka_jars()),
        # Window starts are stored as UTC strings: no machine's local zone may leak in.
        "spark.sql.session.timeZone": "UTC",
        # The default of 200 shuffle partitions costs far more than it brings on a few cores.
        "spark.sql.shuffle.partitions": str(cores),
        "spark.default.parallelism": str(cores),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
    }


def local_spark_session(
    app_name: str, master: str = "local[*]", extra_conf: dict[str, str] | None = None
) -> SparkSession:
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        # Spark otherwise picks the machine's first network interface and warns about it.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    for key, value in {**local_session_conf(master), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
