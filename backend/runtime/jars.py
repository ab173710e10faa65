"""The Java pieces `make setup` resolves with Maven (see jvm/pom.xml) into .cache/jars/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from backend.settings import PROJECT_ROOT

JARS_DIR = PROJECT_ROOT / ".cache" / "jars"
KAFKA_BROKER_JARS = JARS_DIR / "kafka-broker"
SPARK_KAFKA_JARS = JARS_DIR / "spark-kafka"
DELTA_JARS = JARS_DIR / "delta"
POM_FILE = PROJECT_ROOT / "jvm" / "pom.xml"


class JavaSetupError(RuntimeError):
    """Java or the jars `make setup` resolves are missing; the message says what to do."""


def _jars_in(folder: Path, what: str) -> list[Path]:
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise JavaSetupError(f"{what} jars are missing in {folder}: run `make setup`")
    return jars


def kafka_broker_classpath() -> str:
    """The Java classpath of the Kafka broker and Kafka's command-line tools."""
    _jars_in(KAFKA_BROKER_JARS, "Kafka broker")
    return f"{KAFKA_BROKER_JARS}/*"


def artifact_shipped_with(artifact_id: str, shipped_jar_names: list[str]) -> bool:
    """True when a jar named ``<artifact_id>-<version>.jar`` is among ``shipped_jar_names``."""
    pattern = re.compile(re.escape(artifact_id) + r"-\d[^/]*\.jar")
    return any(pattern.fullmatch(name) for name in shipped_jar_names)


def spark_kafka_jars(connector_dir: Path = SPARK_KAFKA_JARS, pyspark_jars_dir: Path | None = None) -> list[Path]:
    """The connector's jars that pyspark does not already ship.

    Maven resolves spark-sql-kafka-0-10 with all its dependencies, some of which (Hadoop
    client, Scala, compression codecs) Spark has in its own jars folder, at its own
    versions; putting a second copy on the classpath invites class conflicts.
    """
    if pyspark_jars_dir is None:
        import pyspark

        pyspark_jars_dir = Path(pyspark.__file__).parent / "jars"
    shipped = [p.name for p in pyspark_jars_dir.glob("*.jar")]
    jars = _jars_in(connector_dir, "Spark Kafka connector")
    return [jar for jar in jars if not artifact_shipped_with(jar.stem, shipped)]


def delta_jars(delta_dir: Path = DELTA_JARS, pyspark_jars_dir: Path | None = None) -> list[Path]:
    """Delta Lake's jars that pyspark does not already ship (the consumer's ``--sink delta``, locally)."""
    if pyspark_jars_dir is None:
        import pyspark

        pyspark_jars_dir = Path(pyspark.__file__).parent / "jars"
    shipped = [p.name for p in pyspark_jars_dir.glob("*.jar")]
    jars = _jars_in(delta_dir, "Delta Lake")
    return [jar for jar in jars if not artifact_shipped_with(jar.stem, shipped)]


def pom_property(name: str, pom_file: Path = POM_FILE) -> str:
    """A <properties> value of jvm/pom.xml, e.g. ``kafka.version``."""
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom_file.read_text())
    if match is None:
        raise KeyError(f"property {name} not found in {pom_file}")
    return match.group(1).strip()


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` from the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise JavaSetupError("java not found: install a JDK 17 or newer (apt-get install openjdk-17-jdk-headless)")
    return found
