"""Fault scenario 7, a secrets canary: fake secrets go everywhere a secret goes; none shows anywhere else.

Four unique canaries: the X bearer token (X_BEARER_TOKEN; the producer's x source reads the X
API stand-in with it), the SASL password of a broker of the scenario's own whose client
listener wants SASL/PLAIN (the console and its jobs get it from the secrets file the Setup
page writes, TWEETSTREAM_SECRETS_FILE; a producer run from the command line gets it from
TWEETSTREAM_KAFKA_SASL_PASSWORD), DATABRICKS_TOKEN and AZURE_CLIENT_SECRET (in the console's
environment, so in every job's).

The real pipeline runs: the console (``streamlit run app.py``) driven by Chromium tests the
connection on Setup, starts the producer (x source) and the Spark job (a micro-batch every
second) from their pages; a synthetic producer runs from the command line beside them. While
they run, every command line of this run's processes is read again and again; every page is
rendered (while the jobs run and after they stopped) and its HTML kept. Afterwards every file
of the run (the console's state directory: logs, status, pid and lock files, the SQLite store,
the checkpoints, the Parquet archive; the server's log; the jobs' temporary folders) and every
record of the topic (read back over SASL) are searched for each canary: raw, its unique core,
URL-, HTML-, base64- (both alphabets, the three alignments) and hex-encoded. 0 hits required.

Searched apart: the broker's folder (its server.properties holds the password, as it must) and
the secrets file (it holds the password, as it must). The canaries are checked to have reached
the processes' environments, where secrets belong: a search that cannot find them anywhere
would prove nothing.

The SASL broker is the harness's (sasl_broker), which scenario 9 (bad_settings) uses too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from backend.console import supervisor
from backend.runtime.job_files import read_status
from tests.faults.harness import (
    SASL_USERNAME,
    Run,
    SaslCluster,
    ScenarioFailed,
    check,
    run_job,
    sasl_broker,
    scenario,
    wait_until,
)
from tests.support import free_port

# -- the scenario ------------------------------------------------------------------------------

PAGES = ("Overview", "Setup", "Producer", "Consumer", "Topics")
PAGE_MS = 30_000
SPARK_BATCH_S = 300.0  # Spark's start and first micro-batch: 40-100 s on two cores, more when busy
X_POSTS = 400
CLI_EVENTS = 300


def canary(kind: str) -> str:
    """A unique fake secret; ``+/=&`` make its URL, HTML and base64 forms differ from it."""
    return f"canary-{kind}-{uuid.uuid4().hex}+/=&"


def needles(secret: str) -> dict[str, bytes]:
    """Every form of ``secret`` searched for, by name."""
    raw = secret.encode()
    core = re.search(r"[0-9a-f]{32}", secret).group(0).encode()  # survives any escaping that keeps hex
    forms = {
        "raw": raw,
        "core": core,
        "url": urllib.parse.quote(secret, safe="").encode(),
        "url+": urllib.parse.quote_plus(secret).encode(),
        "html": html.escape(secret).encode(),
        "hex": binascii.hexlify(raw),
    }
    # Inside a larger base64 text the secret starts at any of three byte alignments: what is
    # certain to appear is the encoding of its whole 3-byte groups, from offset 0, 1 or 2.
    for name, data in (("raw", raw), ("core", core)):
        for offset in range(3):
            whole = data[offset : offset + 3 * ((len(data) - offset) // 3)]
            forms[f"base64 {name} @{offset}"] = base64.b64encode(whole)
            forms[f"base64url {name} @{offset}"] = base64.urlsafe_b64encode(whole)
    return forms


def _check_needles() -> None:
    """The base64 needles find a secret wherever it sits in what was encoded (a SASL PLAIN message, say)."""
    secret = canary("self-test")
    forms = needles(secret)
    for prefix in (b"", b"\0", b"\0user\0"):
        for encode, alphabet in ((base64.b64encode, "base64"), (base64.urlsafe_b64encode, "base64url")):
            encoded = encode(prefix + secret.encode() + b"\0tail")
            check(
                any(needle in encoded for form, needle in forms.items() if form.startswith(f"{alphabet} raw")),
                f"the {alphabet} needles miss a secret after {len(prefix)} bytes",
            )


@dataclass
class Search:
    """Counts what was searched; keeps every hit as (where, secret, form)."""

    secrets: dict[str, str]
    hits: list[tuple[str, str, str]] = field(default_factory=list)
    files: int = 0
    file_passes: int = 0
    areas: dict[str, int] = field(default_factory=dict)  # files searched, by top folder of the run
    frames: int = 0  # websocket messages from the console's server to the browser
    frame_bytes: int = 0
    file_bytes: int = 0
    pages: int = 0
    page_bytes: int = 0
    processes: set[int] = field(default_factory=set)
    command_lines: set[str] = field(default_factory=set)
    records: int = 0
    record_bytes: int = 0

    def __post_init__(self) -> None:
        self._needles = {name: needles(secret) for name, secret in self.secrets.items()}

    def data(self, where: str, data: bytes) -> None:
        for name, forms in self._needles.items():
            for form, needle in forms.items():
                if needle in data:
                    self.hits.append((where, name, form))

    def tree(self, root: Path, skip: tuple[Path, ...] = ()) -> None:
        for path in sorted(root.rglob("*")):
            if any(path == s or s in path.parents for s in skip) or not path.is_file() or path.is_symlink():
                continue
            try:
                data = path.read_bytes()
            except OSError:  # gone meanwhile (a temporary file)
                continue
            self.files += 1
            self.file_bytes += len(data)
            area = path.relative_to(root).parts[0]
            self.areas[area] = self.areas.get(area, 0) + 1
            self.data(str(path), data)

    def page(self, name: str, content: str) -> None:
        data = content.encode()
        self.pages += 1
        self.page_bytes += len(data)
        self.data(f"page {name} (render {self.pages})", data)

    def frame(self, payload: str | bytes) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.frames += 1
        self.frame_bytes += len(data)
        self.data(f"websocket message {self.frames} to the browser", data)

    def command_line(self, pid: int, line: str) -> None:
        self.processes.add(pid)
        if line not in self.command_lines:
            self.command_lines.add(line)
            self.data(f"command line of pid {pid}: {line[:200]}", line.encode())


class CommandLines:
    """Reads the command line of every process of this run (``ps``) every half second, in a thread."""

    def __init__(self, search: Search) -> None:
        self.search = search
        self.rounds = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="canary-ps", daemon=True)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    def sample(self) -> None:
        with self._lock:
            self.rounds += 1
            for process in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    self.search.command_line(process.pid, " ".join(process.cmdline()))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()


def environments_holding(secret: str) -> int:
    """How many processes of this run have ``secret`` in their environment (where it belongs)."""
    count = 0
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if secret in process.environ().values():
                count += 1
    return count


def open_page(page: Any, link: str) -> None:
    page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(rf"{link}$")).click()
    heading = "Tweet stream console" if link == "Overview" else link
    page.get_by_role("heading", name=heading, level=1).wait_for(timeout=PAGE_MS)


def render(page: Any, search: Search, link: str) -> None:
    """Open a page, let its live parts draw twice, open its expanders, keep its HTML for the search."""
    open_page(page, link)
    page.wait_for_timeout(4500)
    page.evaluate(
        "() => document.querySelectorAll('[data-testid=\"stExpander\"] details').forEach((d) => { d.open = true; })"
    )
    page.wait_for_timeout(500)
    check(page.get_by_test_id("stException").count() == 0, f"the {link} page shows an exception")
    search.page(link, page.content())


def read_topic_sasl(cluster: SaslCluster, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic``, read back over the SASL listener."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **cluster.client_config(),
            "group.id": f"canary-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        records = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            check(time.monotonic() < deadline, f"reading {topic} back took over {timeout:g} s")
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise ScenarioFailed(f"reading {topic} back: {error.str()}")
                else:
                    at_end.discard(message.partition())
                    records.append(message)
        return records
    finally:
        consumer.close()


@scenario(7, "secrets-canary")
def secrets_canary(run: Run) -> None:
    from playwright.sync_api import sync_playwright

    from backend.kafka.connection import ConnectionProfile, save_profile
    from tests.console_server import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server
    from tests.standins.x_api import XApiStandIn, make_post, send_posts

    secrets = {
        "X bearer token": canary("x"),
        "SASL password": canary("sasl"),
        "Databricks token": canary("databricks"),
        "Azure client secret": canary("azure"),
    }
    _check_needles()
    search = Search(secrets)
    check(CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    state_dir = run.folder("state")
    logs = run.folder("logs")
    scratch = run.folder("tmp")  # the jobs' TMPDIR and Spark's local dirs: searched too
    secrets_folder = run.folder("secrets")
    secrets_file = secrets_folder / "secrets.toml"
    topic = "tweets"

    with sasl_broker(run, secrets["SASL password"]) as cluster, XApiStandIn(token=secrets["X bearer token"]) as x:
        # The profile as the Setup page's "Save profile" writes it.
        save_profile(
            ConnectionProfile(
                kind="cluster",
                bootstrap_servers=cluster.bootstrap,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_username=SASL_USERNAME,
                sasl_password=secrets["SASL password"],
            ),
            secrets_file,
        )
        posts = [make_post(number) for number in range(1, X_POSTS + 1)]
        script = send_posts(posts, end="heartbeats")
        script.events = [item for event in script.events for item in (event, 0.05)]  # about 20 posts/s
        x.queue_stream(script)
        run.note(
            f"SASL broker at {cluster.bootstrap}, X API stand-in at {x.base_url} ({X_POSTS} posts queued); "
            f"canaries: {', '.join(secrets)}"
        )
        server_env = {
            "TWEETSTREAM_STATE_DIR": str(state_dir),
            "TWEETSTREAM_SECRETS_FILE": str(secrets_file),
            "TWEETSTREAM_KAFKA_PORT": str(free_port()),  # the console's own broker: not used
            "TWEETSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
            "TWEETSTREAM_X_API_BASE_URL": x.base_url,
            "X_BEARER_TOKEN": secrets["X bearer token"],
            "DATABRICKS_TOKEN": secrets["Databricks token"],
            "AZURE_CLIENT_ID": "00000000-0000-4000-8000-000000000001",
            "AZURE_TENANT_ID": "00000000-0000-4000-8000-000000000002",
            "AZURE_CLIENT_SECRET": secrets["Azure client secret"],
            "TMPDIR": str(scratch),
            "SPARK_LOCAL_DIRS": str(scratch / "spark"),
        }
        skipped = (run.workdir / "broker", secrets_folder)  # they hold the password, as they must

        def search_files() -> None:
            search.tree(run.workdir, skip=skipped)
            search.file_passes += 1

        with CommandLines(search) as ps:
            # Nothing of this process's environment that could change the result: start_server
            # drops outside settings (a developer's TWEETSTREAM_*, tokens, STREAMLIT_*).
            server = start_server(server_env, logs / "streamlit.log")
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                    try:
                        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                        # Everything the server sends the browser, rendered or not.
                        page.on("websocket", lambda ws: ws.on("framereceived", search.frame))
                        _drive_console(
                            run, page, server.url, search, cluster, state_dir, logs, secrets, x, search_files
                        )
                    finally:
                        browser.close()
            finally:
                stop_server(server)
                for name in supervisor.JOB_NAMES:
                    outcome = supervisor.stop_job(state_dir, name, timeout=90)
                    if outcome != "not running":
                        run.note(f"teardown: the {name} was still running: {outcome}")

        records = read_topic_sasl(cluster, topic)
    search.records = len(records)
    for record in records:
        data = b"\0".join([record.key() or b"", record.value() or b""])
        data += b"".join(k.encode() + b"\0" + (v or b"") for k, v in record.headers() or [])
        search.record_bytes += len(data)
        search.data(f"topic {topic} partition {record.partition()} offset {record.offset()}", data)
    keys = [record.key() for record in records]
    run.result.stored = len(records)
    run.result.duplicated = len(keys) - len(set(keys))
    run.result.lost = max(0, run.result.acked - len(records))

    search_files()
    # The control: the same search finds the password where it is kept on purpose.
    control = Search({"SASL password": secrets["SASL password"]})
    for folder in skipped:
        control.tree(folder)
    found = sorted({Path(where).name for where, _secret, form in control.hits if form == "raw"})
    check(
        {"server.properties", "secrets.toml"} <= set(found),
        f"the search does not find the password where it is kept on purpose (found in {found})",
    )
    run.note(f"control: the same search finds the SASL password in the broker's and the secrets file ({found})")
    run.note(
        f"searched {len(secrets)} canaries x {len(needles(secrets['SASL password']))} forms in: "
        f"{search.files} files ({search.file_bytes:,} bytes; {search.file_passes} passes, while the jobs ran and "
        f"after; by folder {search.areas}), {search.pages} page renders ({search.page_bytes:,} bytes of HTML), "
        f"{search.frames} websocket messages to the browser ({search.frame_bytes:,} bytes), "
        f"{len(search.command_lines)} distinct command lines of {len(search.processes)} processes "
        f"({ps.rounds} ps rounds), {search.records} topic records ({search.record_bytes:,} bytes): "
        f"{len(search.hits)} hits"
    )
    shown = "; ".join(f"{secret} ({form}) in {where}" for where, secret, form in search.hits[:10])
    check(not search.hits, f"{len(search.hits)} hits: {shown}")
    check(run.result.lost == 0 and run.result.duplicated == 0, "the topic does not hold every acknowledged tweet once")


def _drive_console(
    run: Run,
    page: Any,
    url: str,
    search: Search,
    cluster: SaslCluster,
    state_dir: Path,
    logs: Path,
    secrets: dict[str, str],
    x: Any,
    midway: Callable[[], None],
) -> None:
    """Setup's Test connection, the producer (x source) and the Spark job started from their pages,
    a synthetic producer from the command line; every page rendered while they run and after."""
    page.goto(url)
    page.get_by_role("heading", name="Tweet stream console", level=1).wait_for(timeout=PAGE_MS)
    search.page("Overview", page.content())

    open_page(page, "Setup")
    page.get_by_role("button", name="Test connection").click()
    connected = page.get_by_text(re.compile(rf"^connected to {re.escape(cluster.bootstrap)}"))
    connected.wait_for(timeout=PAGE_MS)
    run.note(f"Setup, Test connection: {connected.first.text_content()}")
    search.page("Setup", page.content())

    open_page(page, "Producer")
    page.get_by_text("X API (live)").click()
    page.get_by_label("Rule or query").fill("#Azure lang:en")
    page.get_by_label("Rule or query").press("Enter")
    page.get_by_text("An X API bearer token is set (X_BEARER_TOKEN).").wait_for(timeout=PAGE_MS)
    page.get_by_role("button", name="Start producer").click()
    page.get_by_text(re.compile(r"Producer started \(pid \d+\)")).wait_for(timeout=PAGE_MS)
    producer_status = state_dir / "jobs" / "producer" / "status.json"
    waited = wait_until(lambda: (read_status(producer_status) or {}).get("acked", 0) >= 50, 60, "50 tweets from X")
    run.note(
        f"producer (x source) started from the console: 50 tweets from the stand-in acknowledged in {waited:.1f} s"
    )
    check(
        bool(x.requests) and all(r.authorization == f"Bearer {secrets['X bearer token']}" for r in x.requests),
        "the producer did not send the X token the stand-in expects",
    )

    open_page(page, "Consumer")
    page.get_by_label("Micro-batch every").fill("1 second")
    page.get_by_label("Micro-batch every").press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Start Spark job").click()
    page.get_by_text(re.compile(r"Spark job started \(pid \d+\)")).wait_for(timeout=PAGE_MS)

    # Beside them, a synthetic producer from the command line, its password from its environment.
    cli_log = logs / "cli-producer.log"
    cli_status = state_dir / "jobs" / "cli-producer" / "status.json"
    code, summary = run_job(
        "jobs.producer",
        ["--topic", "tweets", "--count", str(CLI_EVENTS), "--rate", "200", "--status-file", str(cli_status)],
        state_dir,
        cli_log,
        timeout=120,
        **cluster.settings_env(),
        TWEETSTREAM_SECRETS_FILE=str(state_dir / "no-secrets.toml"),
        X_BEARER_TOKEN=secrets["X bearer token"],
        DATABRICKS_TOKEN=secrets["Databricks token"],
        AZURE_CLIENT_SECRET=secrets["Azure client secret"],
    )
    check(code == 0 and summary is not None, f"the command-line producer exited {code}; see {cli_log}")
    run.note(f"command-line producer (synthetic, SASL password from its environment): acked {summary['acked']}")

    consumer_status = state_dir / "jobs" / "consumer" / "status.json"

    def batch_rows() -> int:
        return int(((read_status(consumer_status) or {}).get("last_batch") or {}).get("input_rows") or 0)

    def batch_done() -> bool:
        view = supervisor.job_view(state_dir, "consumer")
        if not view.running:
            tail = "\n".join(supervisor.log_tail(state_dir, "consumer", 30))
            raise ScenarioFailed(f"the Spark job is {view.state} before its first micro-batch; its log ends:\n{tail}")
        return batch_rows() > 0

    waited = wait_until(batch_done, SPARK_BATCH_S, "a micro-batch with rows")
    run.note(f"Spark job (SASL) started from the console: a micro-batch of {batch_rows()} records after {waited:.0f} s")
    # Each canary is in use, or its search proves nothing: the SASL password logged the console, the
    # jobs and the Setup page's test in (above); the others sit in the environments, where they belong.
    in_env = {name: environments_holding(secret) for name, secret in secrets.items() if name != "SASL password"}
    run.note(f"processes holding each canary in their environment (where it belongs): {in_env}")
    check(all(in_env.values()), f"a canary reached no process at all, so its search proves nothing: {in_env}")

    for link in PAGES:  # while the jobs run
        render(page, search, link)
    midway()  # the files as they are while the jobs write them
    page.get_by_role("button", name="Read messages").click()
    page.get_by_text(re.compile(r"\d+ messages read")).wait_for(timeout=PAGE_MS)
    for summary_element in page.locator('[data-testid="stExpander"] summary').all()[:5]:
        summary_element.click()
    search.page("Topics (messages read)", page.content())

    open_page(page, "Producer")
    page.get_by_role("button", name="Stop producer").click()
    page.get_by_text(re.compile(r"^Producer terminated after [\d.]+ s")).wait_for(timeout=120_000)
    open_page(page, "Consumer")
    page.get_by_role("button", name="Stop Spark job").click()
    page.get_by_text(re.compile(r"^Spark job (terminated|killed) after [\d.]+ s")).wait_for(timeout=150_000)
    x_status = read_status(state_dir / "jobs" / "producer" / "status.json") or {}
    run.result.sent = int(x_status.get("sent", 0)) + int(summary["sent"])
    run.result.acked = int(x_status.get("acked", 0)) + int(summary["acked"])
    run.note(f"stopped from the console: producer (x) sent {x_status.get('sent')}, acked {x_status.get('acked')}")

    for link in PAGES:  # after the jobs stopped: their last states and logs
        render(page, search, link)
