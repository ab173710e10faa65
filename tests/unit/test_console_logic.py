"""The console's pure logic: rates from counter samples, lag, time ranges, job requests, uploads, checks."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from backend.aggregates.records import Progress
from backend.console import checks, supervisor, uploads, views
from backend.console.job_requests import ConsumerRequest, ProducerRequest, RequestError, check_consumer, check_producer
from backend.console.monitor import (
    KafkaSample,
    PartitionOffsets,
    RateHistory,
    aged_out_per_partition,
    lag_per_partition,
)
from backend.runtime.job_files import JobFiles, write_status
from backend.runtime.processes import ProcessRecord, write_pid_file
from backend.settings import Settings


def test_rates_are_counter_deltas_per_second_and_a_reset_starts_afresh():
    history = RateHistory(window_s=60)
    history.add(100.0, 0)
    history.add(101.0, 50)
    history.add(103.0, 250)
    history.add(104.0, 10)  # the job restarted: its counter went down
    history.add(106.0, 30)
    assert [(p.at, p.per_second) for p in history.points()] == [(101.0, 50.0), (103.0, 100.0), (106.0, 10.0)]
    assert history.latest == 10.0


def test_rate_history_keeps_only_its_window():
    history = RateHistory(window_s=10)
    for second in range(30):
        history.add(float(second), second * 5)
    assert [p.at for p in history.points()] == [float(s) for s in range(19, 30)]
    assert all(p.per_second == 5.0 for p in history.points())


def test_lag_is_end_offset_minus_processed_offset_per_partition():
    lag = lag_per_partition({0: 100, 1: 50, 2: 7}, {"0": 90, "1": 50})
    assert lag == {0: 10, 1: 0, 2: None}  # partition 2 not read yet
    assert lag_per_partition({0: 5}, None) == {0: None}


def test_lag_frame_shows_each_partition_of_the_jobs_topic():
    kafka = KafkaSample(
        reachable=True, sampled_at=1.0, topics={"tweets": {0: PartitionOffsets(0, 120), 1: PartitionOffsets(10, 80)}}
    )
    progress = Progress("q", 3, 10, 1.0, 1.0, 5, {}, {"0": 100, "1": 80})
    frame = views.lag_frame(kafka, "tweets", progress)
    assert frame.to_dict("records") == [
        {"partition": 0, "end offset": 120, "processed up to": 100, "lag (records)": 20},
        {"partition": 1, "end offset": 80, "processed up to": 80, "lag (records)": 0},
    ]
    assert views.lag_frame(kafka, "other", progress).empty


def test_records_retention_deleted_before_the_job_read_them_are_counted_per_partition():
    kafka = KafkaSample(
        reachable=True,
        sampled_at=1.0,
        topics={"tweets": {0: PartitionOffsets(600, 900), 1: PartitionOffsets(40, 900), 2: PartitionOffsets(0, 5)}},
    )
    progress = Progress("q", 3, 10, 1.0, 1.0, 5, {}, {"0": 500, "1": 500})
    # Partition 0 lost 100 unread records; 1 is behind but nothing of it is gone; 2 is not read yet.
    assert views.aged_out(kafka, "tweets", progress) == {0: 100}
    assert views.aged_out(kafka, "tweets", None) == {}
    assert aged_out_per_partition({0: PartitionOffsets(500, 900)}, {"0": 500}) == {}


def test_time_ranges_count_back_from_the_newest_window():
    assert views.time_range("last hour", "2026-11-27T18:00:00Z") == ("2026-11-27T17:00:01Z", None)
    assert views.time_range("last 24 hours", "2026-11-27T18:00:00Z") == ("2026-11-26T18:00:01Z", None)
    assert views.time_range("everything", "2026-11-27T18:00:00Z") == (None, None)
    assert views.time_range("last hour", None) == (None, None)


def test_ages_have_units():
    assert views.age(4.2) == "4 s ago"
    assert views.age(300) == "5 min ago"
    assert views.age(3 * 3600) == "3 h ago"


def test_producer_requests_become_the_jobs_options_and_wrong_ones_are_refused(tmp_path):
    settings = Settings(state_dir=tmp_path)
    assert check_producer(ProducerRequest(rate=250, count=1000), settings) == [
        "--topic=tweets",
        "--create-topic",
        "--source=synthetic",
        "--rate=250",
        "--count=1000",
    ]
    replay = tmp_path / "tweets.jsonl"
    replay.write_text('{"data": {"id": "1", "text": "hi"}}\n')
    arguments = check_producer(ProducerRequest(source="replay", file=replay, loop=True, rate=0), settings)
    assert arguments[-3:] == ["--rate=0", "--file=" + str(replay), "--loop"]
    refusals = {
        "replay file not found": ProducerRequest(source="replay", file=tmp_path / "missing.jsonl"),
        "--rate must be 0 (no limit) or positive": ProducerRequest(rate=-5),
        "only ASCII letters": ProducerRequest(topic="my tweets"),
        "X_BEARER_TOKEN": ProducerRequest(source="x", query="#azure"),
    }
    for reason, request in refusals.items():
        with pytest.raises(RequestError, match=re.escape(reason)):
            check_producer(request, settings)


def test_consumer_requests_are_checked_by_the_consumers_own_rules(tmp_path):
    settings = Settings(state_dir=tmp_path)
    assert "--trigger=1s" in check_consumer(ConsumerRequest(trigger="1s"), settings)
    with pytest.raises(RequestError, match="at most 1 day"):
        check_consumer(ConsumerRequest(window="2 days"), settings)
    with pytest.raises(RequestError, match="not a duration"):
        check_consumer(ConsumerRequest(trigger="soon"), settings)
    with pytest.raises(RequestError, match="not a Kafka topic name"):
        check_consumer(ConsumerRequest(topic="a/b"), settings)


def test_a_long_upload_name_is_shortened_keeping_its_extension_and_the_files_are_private(tmp_path):
    # Issue 19, items 6 and 8: a name of 240+ characters raised "File name too long"; files were 0644.
    state = tmp_path / "state"
    for length in (240, 255, 1000):
        path = uploads.save_upload(state, "t" * length + ".jsonl", f"{length}\n".encode())
        assert path.read_text() == f"{length}\n"
        assert path.name.endswith("tttt.jsonl") and len(path.name) <= 13 + uploads.MAX_NAME
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert oct((state / "uploads").stat().st_mode & 0o777) == "0o700"
    assert uploads.safe_name("x" * 300) == "x" * uploads.MAX_NAME


def test_jobs_get_an_allow_listed_environment_without_the_consoles_secrets():
    # Issue 19, item 5: jobs inherited the console's whole environment.
    console = {
        "PATH": "/usr/bin",
        "JAVA_HOME": "/usr/lib/jvm/java-17",
        "LC_ALL": "C.UTF-8",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TWEETSTREAM_STATE_DIR": "/state",
        "TWEETSTREAM_KAFKA_SASL_PASSWORD": "sasl",  # a job needs it
        "X_BEARER_TOKEN": "x-token",  # the producer's X source needs it
        "TWEETSTREAM_CONSOLE_PASSWORD": "console-canary",
        "TWEETSTREAM_AZURE_CLIENT_SECRET": "azure-canary",
        "AZURE_CLIENT_SECRET": "azure-canary",
        "DATABRICKS_TOKEN": "databricks-canary",
        "STREAMLIT_SERVER_PORT": "8501",
        "SOME_OTHER_SECRET": "other-canary",
    }
    assert supervisor.job_environment(console) == {
        "PATH": "/usr/bin",
        "JAVA_HOME": "/usr/lib/jvm/java-17",
        "LC_ALL": "C.UTF-8",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TWEETSTREAM_STATE_DIR": "/state",
        "TWEETSTREAM_KAFKA_SASL_PASSWORD": "sasl",
        "X_BEARER_TOKEN": "x-token",
    }


def test_uploads_get_safe_names_and_identical_content_is_kept_once(tmp_path):
    first = uploads.save_upload(tmp_path, "../../etc/my tweets.jsonl", b"{}\n")
    again = uploads.save_upload(tmp_path, "../../etc/my tweets.jsonl", b"{}\n")
    assert first == again
    assert first.parent == tmp_path / "uploads"
    assert first.name.endswith("-my_tweets.jsonl")
    assert first.read_bytes() == b"{}\n"
    assert uploads.safe_name("...") == "upload"


def test_a_reused_pid_is_not_taken_for_the_job_and_never_signalled(tmp_path):
    # Our own pid with another start time: what a pid file looks like after the kernel reused the pid.
    files = JobFiles(tmp_path, "producer")
    write_pid_file(files.pid_file, ProcessRecord(pid=os.getpid(), create_time=time.time() - 86_400))
    view = supervisor.job_view(tmp_path, "producer")
    assert not view.running and view.pid is None
    assert view.state == "never started"
    assert supervisor.stop_job(tmp_path, "producer", timeout=1) == "not running"  # and we are still here


def test_a_job_that_was_killed_shows_as_exited_not_running(tmp_path):
    files = JobFiles(tmp_path, "consumer")
    write_status(files.status_file, {"state": "running"})
    assert supervisor.job_view(tmp_path, "consumer").state == "exited"
    write_status(files.status_file, {"state": "stopped"})
    assert supervisor.job_view(tmp_path, "consumer").state == "stopped"


def test_log_tail_gives_the_last_lines(tmp_path):
    files = JobFiles(tmp_path, "producer")
    files.folder.mkdir(parents=True)
    files.log_file.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = supervisor.log_tail(tmp_path, "producer", 200)
    assert len(tail) == 200 and tail[0] == "line 800" and tail[-1] == "line 999"
    assert supervisor.log_tail(tmp_path, "consumer") == []


def test_version_parsing_of_the_prerequisite_checks():
    assert checks.parse_java_major('openjdk version "17.0.9" 2023-10-17') == 17
    assert checks.parse_java_major('java version "1.8.0_392"') == 8
    assert checks.parse_java_major("nonsense") is None
    assert checks.parse_maven_version("Apache Maven 3.8.7\nMaven home: /usr/share/maven") == (3, 8)


def test_the_checks_name_a_fix_whenever_they_fail(monkeypatch, tmp_path):
    monkeypatch.setattr(checks, "KAFKA_BROKER_JARS", tmp_path / "none")
    broker_jars = checks.check_jars()[0]
    assert not broker_jars.ok and "make setup" in broker_jars.fix
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    for check in (checks.check_java(), checks.check_maven()):
        assert not check.ok and "apt-get install" in check.fix


def test_labels_show_markdown_and_html_as_typed():
    assert views.plain("[x](javascript:alert(1)) <b>**hi**</b>") == (
        r"\[x\]\(javascript\:alert\(1\)\) \<b\>\*\*hi\*\*\</b\>"
    )
    assert views.plain("a\nb" + "c" * 200, limit=10) == "a bcccccc…"  # 10 characters with the ellipsis


def test_a_sample_seen_twice_adds_no_rate_point():
    history = RateHistory(window_s=60)
    history.add(10.0, 100)
    history.add(11.0, 200)
    history.add(11.0, 200)  # the job's status file not rewritten since the last sample
    history.add(12.0, 300)
    assert [(p.at, p.per_second) for p in history.points()] == [(11.0, 100.0), (12.0, 100.0)]


def test_each_status_file_has_its_own_pid_file(tmp_path):
    from backend.runtime.job_files import pid_and_lock_files

    files = JobFiles(tmp_path, "consumer")
    assert pid_and_lock_files(files.status_file) == (files.pid_file, files.lock_file)
    # Two jobs told to write their status into one folder (bench e2e) do not share a pid file.
    assert pid_and_lock_files(tmp_path / "producer-status.json") == (
        tmp_path / "producer-status.json.pid",
        tmp_path / "producer-status.json.lock",
    )


# -- text from outside shown as text (issue 19, items 9 and 10) ------------------------------------------

HOSTILE = "[click me](http://evil.example) <b>bold</b> <a href='http://evil.example'>x</a> :red[alarm] **now**"


def test_a_brokers_error_text_reaches_markdown_escaped():
    # Issue 19, item 10: an error text (or a topic name in it) rendered its links and emphasis.
    kafka = KafkaSample(reachable=False, sampled_at=1.0, error=HOSTILE)
    snapshot = SimpleNamespace(bootstrap="kafka-1.example:9092", kafka=kafka, local_broker=None)
    ok, line = views.kafka_line(snapshot)  # what the sidebar and the Topics page show
    assert not ok
    assert "](" not in line and "<b>" not in line and ":red[" not in line and "**" not in line
    assert line.startswith(r"\[click me\]\(http\:")
    # What the user sees once Streamlit's markdown has removed the escapes: the text as the broker sent it.
    assert re.sub(r"\\(.)", r"\1", line) == HOSTILE


def test_topic_names_in_plotly_titles_and_legends_stay_text():
    assert (
        views.plotly_text("<a href='http://evil.example'>t</a>")
        == "&lt;a href=&#x27;http://evil.example&#x27;&gt;t&lt;/a&gt;"
    )


def test_csv_downloads_neutralise_spreadsheet_formulas():
    # Issue 19, item 9: hashtags and languages from tweets went into the CSV as they were.
    frame = pd.DataFrame(
        {
            "hashtag": ['=HYPERLINK("http://evil.example")', "+1", "-2", "@SUM(A1)", "\tx", "\ry", "azure", ""],
            "tweets": [1, 2, 3, 4, 5, 6, -7, 8],
        }
    )
    rows = list(csv.reader(io.StringIO(views.csv_bytes(frame).decode("utf-8"), newline="")))
    assert rows[0] == ["hashtag", "tweets"]
    assert [row[0] for row in rows[1:]] == [
        '\'=HYPERLINK("http://evil.example")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\ry",
        "azure",
        "",
    ]
    assert [row[1] for row in rows[1:]] == ["1", "2", "3", "4", "5", "6", "-7", "8"]  # numbers stay numbers
