"""The console as a user gets it: a real Streamlit server driven by a real Chromium.

The server runs ``app.py`` on a free port with its state (broker data, jobs' files, the
aggregates store) in a temporary folder and the local broker on free ports. Whatever the
test did, teardown stops the server, then the producer, the Spark job and the broker.
Chromium is Debian's (``apt-get install chromium``, which ``make test`` does); Playwright
never downloads a browser.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backend.console import supervisor
from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker
from backend.settings import PROJECT_ROOT
from tests.console_server import CHROMIUM, CHROMIUM_ARGS, ServerFailed, local_console_env, start_server, stop_server
from tests.support import free_port

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "logs"
VIEWPORT = {"width": 1400, "height": 1000}  # the console's wide layout
FAILED = pytest.StashKey[bool]()  # whether the test's call phase failed


@dataclass(frozen=True)
class Console:
    url: str
    state_dir: Path
    broker: LocalBroker
    log_file: Path
    webhook: list[str] = field(default_factory=list)  # the texts the alerts' webhook received


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP receiver for the alerts' webhook (Slack-compatible JSON {"text": ...}): its URL and texts."""
    texts: list[str] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            texts.append(str(body.get("text")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", texts
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """``streamlit run app.py`` on a free port, its state and broker isolated from the developer's, its
    alerts' webhook pointed at a local receiver."""
    with webhook_receiver() as (webhook_url, webhook_texts):
        yield from _console(tmp_path, webhook_url, webhook_texts)


def _console(tmp_path: Path, webhook_url: str, webhook_texts: list[str]) -> Iterator[Console]:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    broker = LocalBroker(state_dir=state_dir, port=free_port(), controller_port=free_port(), heap="512m")
    env = local_console_env(state_dir, tmp_path / "secrets.toml", broker.port, broker.controller_port)
    env["TWEETSTREAM_ALERT_WEBHOOK_URL"] = webhook_url
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    try:
        server = start_server(env, LOGS / "streamlit.log")
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        yield Console(
            url=server.url, state_dir=state_dir, broker=broker, log_file=server.log_file, webhook=webhook_texts
        )
    finally:
        # The server goes first: the jobs and the broker it started are its children, and while
        # it lives an exited one stays a zombie that processes.terminate() takes for running
        # (it would wait its whole timeout, 45-90 s, then report "killed"). Once the server is
        # gone, init reaps them. Every step runs even when one before it fails.
        stop_server(server)
        for name in ("producer", "consumer"):
            try:
                outcome = supervisor.stop_job(state_dir, name)
            except Exception as error:  # teardown goes on, and says what failed
                outcome = f"error: {error!r}"
            print(f"teardown: {name} {outcome}")
        try:
            outcome = local_broker.stop(broker)
        except Exception as error:
            outcome = f"error: {error!r}"
        print(f"teardown: broker {outcome}")
        # The jobs' and the broker's logs beside the server's, for a failure on CI.
        for source, name in (
            (state_dir / "jobs" / "producer" / "log", "producer.log"),
            (state_dir / "jobs" / "consumer" / "log", "consumer.log"),
            (broker.log_file, "kafka.log"),
        ):
            with contextlib.suppress(OSError):
                shutil.copyfile(source, LOGS / name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; the test is skipped, saying what to install, when it is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium; make test does)")
    return CHROMIUM


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, chromium: Path, console: Console):
    """A Chromium page on a 1400x1000 viewport; the server starts only once Chromium is found."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "failure.png").unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            yield page
            if request.node.stash.get(FAILED, False):
                # What the browser showed when the test failed.
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(SCREENSHOTS / "failure.png"), full_page=True)
            context.close()
        finally:
            browser.close()
