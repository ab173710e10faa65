"""The consumer on a Databricks cluster: the shared session is never stopped nor its workers'
environment changed; backend/ and jobs/ are shipped to the executors; dbfs: checkpoints.
No Spark is started: the session and its SparkContext are stand-ins."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from backend.options.consumer import ConsumerOptions
from backend.options.consumer_shape import local_folder, record_shape, shape_conflict
from jobs.consumer.options import build_parser, inside, validate
from jobs.consumer.session import PROJECT_DIR, SessionPlan, packages_zip, session_plan, ship_packages, spark_session

DATABRICKS = {"DATABRICKS_RUNTIME_VERSION": "16.4"}


# -- the session: never stop the cluster's -----------------------------------------------------


@pytest.mark.parametrize(
    ("master", "active", "environ", "expected"),
    [
        ("local[*]", True, DATABRICKS, SessionPlan("active", False, False)),
        ("local[*]", False, DATABRICKS, SessionPlan("databricks", False, False)),
        # Whatever else the driver's environment says, Databricks' session is the cluster's.
        ("local[2]", False, {**DATABRICKS, "PYSPARK_GATEWAY_PORT": "4040"}, SessionPlan("databricks", False, False)),
        ("spark://host:7077", False, DATABRICKS, SessionPlan("databricks", False, False)),
        # Off Databricks: as before.
        ("local[*]", True, {}, SessionPlan("active", False, False)),
        ("local[*]", False, {"PYSPARK_GATEWAY_PORT": "4040"}, SessionPlan("spark-submit", True, False)),
        ("local[*]", False, {}, SessionPlan("local", True, True)),
        ("local[2]", False, {"DATABRICKS_RUNTIME_VERSION": ""}, SessionPlan("local", True, True)),
        ("spark://host:7077", False, {}, SessionPlan("master", True, False)),
    ],
)
def test_session_plan(master: str, active: bool, environ: dict[str, str], expected: SessionPlan) -> None:
    assert session_plan(master, active, environ) == expected


class FakeConf:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


class FakeSession:
    def __init__(self) -> None:
        self.conf = FakeConf()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class FakeBuilder:
    """SparkSession.builder as the cluster's driver has it: getOrCreate returns the cluster's session."""

    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def record(*_args: Any) -> FakeBuilder:
            self.calls.append(name)
            return self

        return record

    def getOrCreate(self) -> FakeSession:
        return self.session


def cluster_options(**changes: Any) -> ConsumerOptions:
    args = build_parser().parse_args(
        [
            "--bootstrap",
            "10.0.0.4:9092",
            "--checkpoint",
            "dbfs:/tweetstream/t1/checkpoint",
            "--archive",
            "dbfs:/tweetstream/t1/archive",
            "--store",
            "/local_disk0/tweetstream/aggregates.sqlite",
            "--status-file",
            "/local_disk0/tweetstream/consumer-status.json",
        ]
    )
    options = validate(args, None)
    return ConsumerOptions(**{**options.__dict__, **changes})


def test_spark_session_on_databricks_takes_the_clusters_and_leaves_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyspark.sql import SparkSession  # the module only: no JVM starts

    cluster = FakeSession()
    builder = FakeBuilder(cluster)
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "builder", builder)
    for name, value in DATABRICKS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", "/databricks/spark/python")
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    before = dict(os.environ)

    session, created = spark_session(cluster_options(master="local[*]"))

    assert session is cluster and created is False  # run() stops only a session it created
    assert dict(os.environ) == before  # neither PYSPARK_PYTHON nor PYTHONPATH
    assert builder.calls == []  # no app name, master or jars on the cluster's session
    assert cluster.conf.values["spark.sql.session.timeZone"] == "UTC"


# -- shipping backend/ and jobs/ to the executors ------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    files = {
        "run_job.py": "print('launcher')\n",
        "backend/__init__.py": "",
        "backend/tweets/__init__.py": "",
        "backend/tweets/sentiment.py": "def compound_scores(texts):\n    return [0.5 for _ in texts]\n",
        "backend/azure/__init__.py": "",
        "backend/azure/bundle.py": "X = 1\n",
        "backend/__pycache__/sentiment.cpython-312.pyc": "",
        "backend/lexicon.txt": "not python\n",
        "jobs/__init__.py": "",
        "jobs/consumer.py": "Y = 2\n",
        "tests/test_x.py": "Z = 3\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_zip_holds_the_python_files_of_backend_and_jobs_only(project: Path, tmp_path: Path) -> None:
    zipped = packages_zip(project, tmp_path / "out")
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == [
            "backend/__init__.py",
            "backend/azure/__init__.py",
            "backend/azure/bundle.py",
            "backend/tweets/__init__.py",
            "backend/tweets/sentiment.py",
            "jobs/__init__.py",
            "jobs/consumer.py",
        ]
        assert archive.read("backend/tweets/sentiment.py") == (project / "backend/tweets/sentiment.py").read_bytes()
    assert zipped.parent == tmp_path / "out" and zipped.name.startswith("tweetstream-")
    assert [path.name for path in zipped.parent.iterdir()] == [zipped.name]  # no partial file left


def test_the_zip_is_named_by_its_content(project: Path, tmp_path: Path) -> None:
    first = packages_zip(project, tmp_path / "out")
    assert packages_zip(project, tmp_path / "out") == first  # equal files: the same zip, reused
    (project / "backend" / "tweets" / "sentiment.py").write_text("CHANGED = True\n")
    second = packages_zip(project, tmp_path / "out")
    assert second != first and first.exists()  # Spark never sees another file under a served name


def test_a_python_worker_imports_backend_from_the_zip(project: Path, tmp_path: Path) -> None:
    zipped = packages_zip(project, tmp_path / "out")
    script = (
        f"import sys; sys.path.insert(1, {str(zipped)!r})\n"
        "from backend.tweets.sentiment import compound_scores; import jobs.consumer\n"
        "print(compound_scores(['a', 'b']), jobs.consumer.Y, jobs.consumer.__file__)"
    )
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[0.5, 0.5] 2 ") and str(zipped) in done.stdout


def test_no_python_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        packages_zip(tmp_path, tmp_path / "out")


class FakeContext:
    def __init__(self, fails: bool = False) -> None:
        self.py_files: list[str] = []
        self.fails = fails

    def addPyFile(self, path: str) -> None:
        if self.fails:
            raise RuntimeError("refused")
        self.py_files.append(path)


class ClassicSession:
    """A session with a SparkContext (dedicated access mode)."""

    def __init__(self, context: FakeContext) -> None:
        self.sparkContext = context
        self.artifacts: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def addArtifacts(self, *paths: str, **kinds: Any) -> None:
        self.artifacts.append((paths, kinds))


class ConnectSession:
    """A Spark Connect session: no SparkContext, artifacts instead."""

    def __init__(self) -> None:
        self.artifacts: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    @property
    def sparkContext(self) -> Any:
        raise RuntimeError("[JVM_ATTRIBUTE_NOT_SUPPORTED] sparkContext is not supported in Spark Connect")

    def addArtifacts(self, *paths: str, **kinds: Any) -> None:
        self.artifacts.append((paths, kinds))


def test_off_databricks_nothing_is_shipped_nor_written(project: Path, tmp_path: Path) -> None:
    session = ClassicSession(FakeContext())
    for environ in ({}, {"DATABRICKS_RUNTIME_VERSION": ""}, {"PYSPARK_GATEWAY_PORT": "1"}):
        assert ship_packages(session, project, environ, tmp_path / "out") is None
    assert session.sparkContext.py_files == [] and session.artifacts == []
    assert not (tmp_path / "out").exists()


def test_off_databricks_the_default_touches_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert ship_packages(object()) is None  # not even an attribute is read


def test_on_databricks_the_zip_goes_through_the_spark_context(project: Path, tmp_path: Path) -> None:
    session = ClassicSession(FakeContext())
    zipped = ship_packages(session, project, DATABRICKS, tmp_path / "out")
    assert zipped is not None and zipped.is_file()
    assert session.sparkContext.py_files == [str(zipped)]
    assert session.artifacts == []


def test_on_spark_connect_the_zip_is_a_python_artifact(project: Path, tmp_path: Path) -> None:
    session = ConnectSession()
    zipped = ship_packages(session, project, DATABRICKS, tmp_path / "out")
    assert zipped is not None
    assert session.artifacts == [((str(zipped),), {"pyfile": True})]


def test_a_refused_shipment_is_a_warning_not_a_failure(
    project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Bare:  # neither a reachable SparkContext nor addArtifacts
        @property
        def sparkContext(self) -> Any:
            raise RuntimeError("no context")

    with caplog.at_level(logging.WARNING, logger="consumer"):
        assert ship_packages(ClassicSession(FakeContext(fails=True)), project, DATABRICKS, tmp_path / "a") is None
        assert ship_packages(Bare(), project, DATABRICKS, tmp_path / "b") is None
    assert len([r for r in caplog.records if "ship" in r.getMessage()]) == 2


def test_the_consumer_ships_its_own_project_folder() -> None:
    # The folder that holds jobs/consumer/: the repository here, the bundle's folder on Databricks.
    assert (PROJECT_DIR / "jobs" / "consumer" / "__main__.py").is_file()
    assert (PROJECT_DIR / "backend" / "tweets" / "sentiment.py").is_file()


# -- dbfs: checkpoint and archive, a store on the driver's disk ---------------------------------


def test_cluster_paths_keep_their_schemes() -> None:
    options = cluster_options()
    assert options.checkpoint == "dbfs:/tweetstream/t1/checkpoint"
    assert options.archive == "dbfs:/tweetstream/t1/archive"
    assert options.store == Path("/local_disk0/tweetstream/aggregates.sqlite")
    assert inside(options.checkpoint, "aggregates") == "dbfs:/tweetstream/t1/checkpoint/aggregates"
    assert inside(options.checkpoint, "archive") == "dbfs:/tweetstream/t1/checkpoint/archive"


def test_a_dbfs_checkpoint_is_not_a_local_folder() -> None:
    assert local_folder("dbfs:/tweetstream/t1/checkpoint") is None
    assert local_folder("dbfs:///tweetstream/t1/checkpoint") is None
    assert local_folder("/local_disk0/tweetstream/checkpoint") == Path("/local_disk0/tweetstream/checkpoint")
    assert local_folder("/dbfs/tweetstream/t1/checkpoint") == Path("/dbfs/tweetstream/t1/checkpoint")  # FUSE


def test_no_note_is_written_locally_for_a_dbfs_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative "dbfs:" folder would appear here
    record_shape(cluster_options())
    assert list(tmp_path.iterdir()) == []


def test_a_dbfs_checkpoint_is_checked_against_the_store_only(tmp_path: Path) -> None:
    from backend.aggregates.records import BatchResult, WindowCounts
    from backend.aggregates.sqlite_store import AggregatesStore

    store = tmp_path / "aggregates.sqlite"
    assert shape_conflict(cluster_options(store=store)) is None  # no store yet: nothing to compare
    AggregatesStore(store).create()
    assert shape_conflict(cluster_options(store=store)) is None
    window = WindowCounts("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", 1, 0, 0, 0, 0.5)
    AggregatesStore(store).write_batch(BatchResult("q", 0, windows=[window]))
    assert shape_conflict(cluster_options(store=store)) is None  # the same window length
    refusal = shape_conflict(cluster_options(store=store, window_ms=30_000))
    assert refusal is not None and "holds windows of 60 seconds" in refusal  # caught by the store


def test_a_folder_without_the_packages_is_a_warning_on_databricks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = ClassicSession(FakeContext())
    with caplog.at_level(logging.WARNING, logger="consumer"):
        assert ship_packages(session, tmp_path / "empty", DATABRICKS, tmp_path / "out") is None
    assert session.sparkContext.py_files == [] and "could not zip backend, jobs" in caplog.text
