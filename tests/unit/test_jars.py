import re
from pathlib import Path

import pyspark
import pytest

from backend.runtime.jars import JavaSetupError, artifact_shipped_with, pom_property, spark_kafka_jars
from backend.settings import PROJECT_ROOT


def test_artifact_names_match_only_the_same_artifact():
    shipped = ["scala-library-2.13.18.jar", "hadoop-client-api-3.5.0.jar", "spark-sql_2.13-4.2.0.jar"]
    assert artifact_shipped_with("scala-library", shipped)
    assert artifact_shipped_with("hadoop-client-api", shipped)
    assert not artifact_shipped_with("hadoop-client", shipped)
    assert not artifact_shipped_with("spark-sql-kafka-0-10_2.13", shipped)
    assert not artifact_shipped_with("kafka-clients", shipped)


def test_connector_jars_exclude_what_spark_ships(tmp_path):
    connector = tmp_path / "spark-kafka"
    spark = tmp_path / "pyspark-jars"
    connector.mkdir()
    spark.mkdir()
    for name in ["spark-sql-kafka-0-10_2.13", "kafka-clients", "commons-pool2", "scala-library", "slf4j-api"]:
        (connector / f"{name}.jar").touch()
    for name in ["scala-library-2.13.18", "slf4j-api-2.0.17", "commons-pool-1.5.4"]:
        (spark / f"{name}.jar").touch()
    kept = [jar.name for jar in spark_kafka_jars(connector, spark)]
    assert kept == ["commons-pool2.jar", "kafka-clients.jar", "spark-sql-kafka-0-10_2.13.jar"]


def test_missing_jars_say_to_run_setup(tmp_path):
    with pytest.raises(JavaSetupError, match="run `make setup`"):
        spark_kafka_jars(tmp_path, tmp_path)


def test_connector_version_is_the_installed_pyspark_version():
    """spark-sql-kafka must be built for exactly the Spark that runs it."""
    pinned = re.search(r"^pyspark==(\S+)", (PROJECT_ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned is not None
    assert pom_property("spark.version") == pinned.group(1) == pyspark.__version__


def test_kafka_is_a_4x_release():
    assert pom_property("kafka.version").startswith("4.")


def test_pom_property_names_a_missing_one(tmp_path):
    pom = Path(tmp_path / "pom.xml")
    pom.write_text("<project><properties><a.b>1</a.b></properties></project>")
    assert pom_property("a.b", pom) == "1"
    with pytest.raises(KeyError, match=r"c\.d"):
        pom_property("c.d", pom)
