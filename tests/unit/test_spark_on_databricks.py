"""On Databricks the cluster's session is reused: no master, jars or local-only settings."""

import subprocess
import sys

import pytest

from backend.runtime.spark import on_databricks, session_conf
from backend.settings import PROJECT_ROOT

DATABRICKS = {"DATABRICKS_RUNTIME_VERSION": "16.4"}
LOCAL_ONLY = (
    "spark.master",
    "spark.jars",
    "spark.driver.bindAddress",
    "spark.driver.host",
    "spark.ui.enabled",
    "spark.default.parallelism",
    "spark.driver.memory",
)


def test_databricks_is_told_by_its_runtime_variable():
    assert on_databricks(DATABRICKS)
    assert not on_databricks({})
    assert not on_databricks({"DATABRICKS_RUNTIME_VERSION": ""})


def test_on_databricks_only_sql_settings_reach_the_clusters_session():
    conf = session_conf("local[2]", {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"}, DATABRICKS)
    assert conf == {"spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": "8"}
    assert not set(LOCAL_ONLY) & set(conf)


def test_locally_the_master_and_the_connector_jars_are_set():
    conf = session_conf("local[2]", {"spark.driver.memory": "2g"}, environ={})
    assert conf["spark.master"] == "local[2]"
    assert "spark-sql-kafka-0-10_2.13.jar" in conf["spark.jars"]
    assert conf["spark.driver.memory"] == "2g"
    assert conf["spark.sql.session.timeZone"] == "UTC"


@pytest.mark.timeout(60)
def test_importing_the_session_builder_needs_no_console_settings():
    """A Databricks cluster has no pydantic-settings: backend.runtime.spark must import without it."""
    probe = (
        "import sys, backend.runtime.spark; "
        "print(sorted(m for m in ('backend.settings', 'pydantic_settings') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=50, check=True
    )
    assert result.stdout.strip() == "[]"
