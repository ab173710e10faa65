"""The job bundle: what a Databricks spark_python_task gets, and that it runs from an empty folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.azure.bundle import (
    JOB_MODULES,
    LAUNCHER,
    BundleFile,
    bundle_digest,
    job_bundle,
    launcher_parameters,
    third_party_imports,
    write_bundle,
)
from backend.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def bundle() -> list[BundleFile]:
    return job_bundle()


@pytest.fixture(scope="module")
def extracted(bundle: list[BundleFile], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    write_bundle(bundle, folder)
    return folder


def run_launcher(folder: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: no PYTHONPATH, no user site, no script folder on sys.path: only the launcher's own doing.
    return subprocess.run(
        [sys.executable, "-I", str(folder / LAUNCHER), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=50,
    )


def test_the_bundle_holds_the_launcher_the_jobs_and_what_they_import(bundle: list[BundleFile]) -> None:
    paths = [file.path for file in bundle]
    assert paths[0] == LAUNCHER
    assert paths[1:] == sorted(paths[1:])
    for needed in [
        "jobs/__init__.py",
        "jobs/producer.py",
        "jobs/consumer/__init__.py",
        "jobs/consumer/__main__.py",  # what the launcher runs: python -m jobs.consumer
        "jobs/consumer/run.py",  # imported by __main__
        "jobs/create_topic.py",
        "backend/__init__.py",
        "backend/kafka/topics.py",  # producer: from backend.kafka.topics import ...
        "backend/runtime/processes.py",  # producer: from backend.runtime import processes
        "backend/aggregates/sqlite_store.py",  # consumer, at module level
        "backend/tweets/sentiment.py",  # consumer, imported inside a function
        "backend/runtime/spark.py",  # create_topic and consumer, inside functions
        "backend/settings.py",  # through backend.runtime.jars, backend.kafka.clients...
    ]:
        assert needed in paths
    assert all(path.startswith(("backend/", "jobs/")) for path in paths[1:])
    assert all(path.endswith(".py") for path in paths)
    # What no job imports stays out: the console's UI side and the Azure wizard itself.
    assert not {"backend/console/monitor.py", "backend/console/views.py", "backend/azure/wizard.py", "app.py"} & set(
        paths
    )
    assert not any(path.startswith(("tests/", "pages/", ".state/", ".streamlit/")) for path in paths)
    for file in bundle[1:]:
        assert file.content == (PROJECT_ROOT / file.path).read_bytes()


def test_a_new_import_is_found_from_the_source(tmp_path: Path) -> None:
    """A made-up project: relative imports, imports inside functions and packages' __init__ count."""
    files = {
        "jobs/__init__.py": "",
        "jobs/producer.py": "import json\nfrom backend import helper\n",
        "jobs/consumer.py": "def run():\n    from backend.sub.deep import thing\n",
        "jobs/create_topic.py": "import backend\n",
        "backend/__init__.py": "",
        "backend/helper.py": "from .sibling import x\n",
        "backend/sibling.py": "x = 1\n",
        "backend/sub/__init__.py": "from ..from_init import nothing\n",
        "backend/sub/deep.py": "thing = 2\n",
        "backend/from_init.py": "nothing = 0\n",
        "backend/never.py": "",
        "tests/test_x.py": "from backend import never\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    paths = [file.path for file in job_bundle(tmp_path)]
    assert paths == [
        LAUNCHER,
        "backend/__init__.py",
        "backend/from_init.py",
        "backend/helper.py",
        "backend/sibling.py",
        "backend/sub/__init__.py",
        "backend/sub/deep.py",
        "jobs/__init__.py",
        "jobs/consumer.py",
        "jobs/create_topic.py",
        "jobs/producer.py",
    ]


def test_a_missing_job_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "producer.py").write_text("")
    with pytest.raises(FileNotFoundError, match=r"job modules not found under .*: jobs\.consumer, jobs\.create_topic"):
        job_bundle(tmp_path)


def test_the_digest_follows_paths_and_contents_not_order(bundle: list[BundleFile]) -> None:
    digest = bundle_digest(bundle)
    assert digest == bundle_digest(job_bundle())
    assert digest == bundle_digest(list(reversed(bundle)))
    changed = [*bundle[:-1], BundleFile(bundle[-1].path, bundle[-1].content + b"\n")]
    assert bundle_digest(changed) != digest
    moved = [*bundle[:-1], BundleFile("jobs/other.py", bundle[-1].content)]
    assert bundle_digest(moved) != digest
    # The boundary between a path and its content is not ambiguous.
    assert bundle_digest([BundleFile("a", b"bc")]) != bundle_digest([BundleFile("ab", b"c")])


def test_launcher_parameters_name_the_module_then_its_arguments() -> None:
    assert launcher_parameters("jobs.producer", ["--rate", "100"]) == ["jobs.producer", "--rate", "100"]
    assert launcher_parameters("jobs.create_topic", []) == ["jobs.create_topic"]
    with pytest.raises(ValueError, match=r"'jobs/producer\.py' is not a job of the bundle"):
        launcher_parameters("jobs/producer.py", [])


def test_the_cluster_libraries_the_jobs_need_are_listed(bundle: list[BundleFile]) -> None:
    needed = third_party_imports(bundle)
    assert {"confluent_kafka", "pandas", "vaderSentiment", "pydantic_settings", "psutil"} <= set(needed)
    assert not {"pyspark", "py4j", "backend", "jobs", "json", "__future__"} & set(needed)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("module", JOB_MODULES)
def test_each_job_answers_help_from_the_extracted_bundle_alone(extracted: Path, tmp_path: Path, module: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run([sys.executable, "-I", "-c", "import jobs"], cwd=elsewhere, capture_output=True, timeout=50)
    assert probe.returncode != 0  # nothing but the bundle can provide `jobs` here
    done = run_launcher(extracted, elsewhere, *launcher_parameters(module, ["--help"]))
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert "--help" in done.stdout


@pytest.mark.timeout(60)
def test_the_launcher_passes_the_arguments_on(extracted: Path, tmp_path: Path) -> None:
    args = ["--bootstrap-servers", "127.0.0.1:9", "--topic", "bad name", "--partitions", "1", "--replication", "1"]
    done = run_launcher(extracted, tmp_path, *launcher_parameters("jobs.create_topic", args))
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["error"].startswith("topic name 'bad name' contains ' '")


@pytest.mark.timeout(60)
def test_the_launcher_without_a_module_says_how_to_call_it(extracted: Path, tmp_path: Path) -> None:
    done = run_launcher(extracted, tmp_path)
    assert done.returncode == 1
    assert "usage: run_job.py MODULE [ARG ...]" in done.stderr


def test_the_zip_the_consumer_ships_from_the_bundle_is_what_python_workers_need(
    bundle: list[BundleFile], extracted: Path, tmp_path: Path
) -> None:
    """On Databricks the consumer zips its bundle's backend/ and jobs/ for the executors (the
    launcher puts the folder on the driver's sys.path only): the zip holds the bundle's files,
    and with nothing but the zip on the path, the UDF's import of backend.tweets.sentiment works."""
    import zipfile

    from jobs.consumer.session import packages_zip

    zipped = packages_zip(extracted, tmp_path / "pyfiles")
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == [file.path for file in bundle[1:]]
    script = (
        f"import sys; sys.path.insert(1, {str(zipped)!r})\n"
        "from backend.tweets.sentiment import compound_scores\n"
        "import backend\n"
        "print(backend.__file__); print(compound_scores(['good', 'bad'])[0] > 0)"
    )
    worker = tmp_path / "worker"
    worker.mkdir()
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=worker, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{zipped}/backend/__init__.py", "True"]
