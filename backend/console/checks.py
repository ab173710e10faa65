"""Checks of what the local pipeline needs on this machine, each with the fix to apply.

The Setup page shows them; `make setup` installs what it can (Python packages, jars) and
`jvm/check-prereqs.sh` names what it cannot (a JDK, Maven).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from backend.runtime.jars import (
    DELTA_JARS,
    KAFKA_BROKER_JARS,
    SPARK_KAFKA_JARS,
    JavaSetupError,
    java_executable,
    pom_property,
)

MIN_JAVA = 17
MIN_MAVEN = (3, 8)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found
    fix: str | None = None  # what to do when not ok


def _run(command: list[str], timeout: float = 20.0) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr


def parse_java_major(output: str) -> int | None:
    """The major version in ``java -version`` output ('openjdk version "17.0.9"' → 17, '"1.8.0_392"' → 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def parse_maven_version(output: str) -> tuple[int, int] | None:
    match = re.search(r"Apache Maven (\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_java() -> Check:
    fix = "install a JDK 17 or newer: sudo apt-get install openjdk-17-jdk-headless (or set JAVA_HOME)"
    try:
        java = java_executable()
        output = _run([java, "-version"])
    except (JavaSetupError, OSError, subprocess.TimeoutExpired) as error:
        return Check("Java", False, f"not usable: {error}", fix)
    major = parse_java_major(output)
    if major is None:
        return Check("Java", False, f"{java}: version not recognised", fix)
    if major < MIN_JAVA:
        return Check("Java", False, f"{java} is Java {major}; {MIN_JAVA} or newer is needed", fix)
    return Check("Java", True, f"Java {major} ({java})")


def check_maven() -> Check:
    fix = "install Maven 3.8 or newer: sudo apt-get install maven"
    mvn = shutil.which("mvn")
    if mvn is None:
        return Check("Maven", False, "mvn not found on the PATH", fix)
    try:
        version = parse_maven_version(_run([mvn, "-v"], timeout=60.0))
    except (OSError, subprocess.TimeoutExpired) as error:
        return Check("Maven", False, f"mvn -v failed: {error}", fix)
    if version is None:
        return Check("Maven", False, f"{mvn}: version not recognised", fix)
    if version < MIN_MAVEN:
        return Check("Maven", False, f"Maven {version[0]}.{version[1]} is too old", fix)
    return Check("Maven", True, f"Maven {version[0]}.{version[1]} ({mvn})")


def check_jars() -> list[Check]:
    """The Kafka broker's jars, Spark's Kafka connector and Delta Lake, as `make setup` resolves them."""
    fix = "run `make setup` (Maven resolves the jars into .cache/jars)"
    checks = []
    for name, folder, version_property in (
        ("Kafka broker jars", KAFKA_BROKER_JARS, "kafka.version"),
        ("Spark Kafka connector jars", SPARK_KAFKA_JARS, "spark.version"),
        ("Delta Lake jars", DELTA_JARS, "delta.version"),
    ):
        jars = sorted(folder.glob("*.jar"))
        try:
            version = pom_property(version_property)
        except (KeyError, OSError):
            version = "?"
        if jars:
            checks.append(Check(name, True, f"{len(jars)} jars for version {version} in {folder}"))
        else:
            checks.append(Check(name, False, f"no jars in {folder}", fix))
    return checks


def all_checks() -> list[Check]:
    return [check_java(), check_maven(), *check_jars()]
