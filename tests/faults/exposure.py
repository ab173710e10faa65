"""Fault scenario 8, exposure (issue 7): the console serves beyond 127.0.0.1 only behind a login,
XSRF protection stays on, and a tweet's HTML shows as text.

The real server (``streamlit run app.py``, tests/console_server.py) and Debian's Chromium:

a. default config: the server listens on 127.0.0.1 only (the listening sockets of its process, by
   psutil; and a connection to this machine's first non-loopback address is refused);
b. on 0.0.0.0 without authentication: every URL shows the refusal and none of the console (the
   fresh server's first request names a page: /setup), and
   ``python -m backend.console.exposure check --server.address 0.0.0.0`` exits 2;
c. on 0.0.0.0 with a console password (the fresh server's first request: /producer): the password
   form, a wrong password refused, the right one opens the console; the password is in no page
   HTML, server log or command line;
d. XSRF: an upload PUT (and DELETE) without the XSRF cookie and header is refused (403), the same
   PUT with them passes that check (then 400: the session id is made up);
e. tweets whose text is ``<img src=x onerror=alert(1)>`` (one sent with confluent_kafka, one by the
   producer job) show as text on Topics (message browser) and Producer (latest messages): no dialog,
   no <img src="x"> in the DOM, the literal text visible;
f. on 127.0.0.1 with the console password (where a TLS proxy would forward to): the fresh server's
   first request (/topics) shows the password form, none of the console, and
   ``python -m backend.console.exposure check`` says the password applies;
g. DNS rebinding (issue 19) against the default config: a websocket handshake on /_stcore/stream with a
   foreign Host and Origin gets 403 (the same with 127.0.0.1 gets 101), an upload PUT with them 403; the
   static page Streamlit serves to any Host holds none of the console; and Chromium resolving the foreign
   name to 127.0.0.1 (as a rebinding page would) loads that page but its websocket is refused and it
   draws nothing of the console;
h. a parallel brute force (issue 19): 20 sessions (websockets speaking Streamlit's protocol, as its
   frontend does) send 4 wrong passwords each at once; at most 5 are compared, the others refused, and
   a 21st session with the right password right after is refused too (30 s lockout).

A page counts as drawn once its script run has ended (Streamlit marks ``stApp`` with
``data-test-script-state="notRunning"``), not after a fixed wait.

Figures: sent and acked count the XSS tweets; stored counts those the message browser showed as text.
Both added parts reuse servers the scenario starts anyway (a and f).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from backend.settings import PROJECT_ROOT
from tests.console_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DATAFRAME_ROWS,
    Server,
    local_console_env,
    start_server,
    stop_server,
)
from tests.faults.harness import Run, ScenarioFailed, check, job_env, run_job, scenario

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page, WebSocket
    from streamlit.proto.Element_pb2 import Element
    from streamlit.proto.WidgetStates_pb2 import WidgetState

XSS = "<img src=x onerror=alert(1)>"
TOPIC = "tweets"
PAGE_MS = 60_000  # a page or a rerun to show (two cores, other jobs running)
VIEWPORT = {"width": 1400, "height": 1000}
# Streamlit's frontend sets this on its root while no script run is going on: all the run drew is shown.
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# The headings of the console's pages (the gate's own title is "Tweet stream console").
PAGE_HEADINGS = {"Setup", "Producer", "Consumer", "Topics", "Message browser"}

# What a page shows of the console itself: the navigation, the sidebar's live state, any page heading
# (but "Page not found": Streamlit's notice when the URL names a page the gate does not serve).
CONSOLE_SHOWN = """() => ({
  nav: document.querySelectorAll('[data-testid="stTopNavLink"]').length,
  sidebar: document.querySelectorAll('[data-testid="stSidebarUserContent"] [data-testid="stElementContainer"]').length,
  headings: Array.from(document.querySelectorAll('h1, h2, h3'), (h) => h.textContent.trim())
    .filter((t) => t && t !== 'Page not found'),
})"""

# The gate (its refusal or its password field) or a console page's heading: something a run drew.
SOMETHING_SHOWN = """(headings) =>
  document.querySelector('input[aria-label="Console password"]') !== null
  || Array.from(document.querySelectorAll('[data-testid="stAlert"]'))
       .some((a) => a.textContent.includes('refuses to serve'))
  || Array.from(document.querySelectorAll('h1, h2, h3')).some((h) => headings.includes(h.textContent.trim()))"""

# Markup a tweet's text would have become, had it been rendered.
INJECTED = """() => ({
  img: document.querySelectorAll('img[src="x"]').length,
  onerror: document.querySelectorAll('[onerror]').length,
})"""


def listening(pid: int) -> list[str]:
    """The addresses ``ip:port`` the process listens on (TCP)."""
    return sorted(
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    )


def non_loopback_ipv4() -> str | None:
    """This machine's first IPv4 address that is not loopback: where another machine would connect."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def exposure_check(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    """``python -m backend.console.exposure check`` as ``make run`` runs it (from the project's folder)."""
    return subprocess.run(
        [sys.executable, "-m", "backend.console.exposure", "check", *flags],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def hosts_option(lan_ip: str | None) -> tuple[str, ...]:
    """``streamlit run`` options keeping the loopback names and adding this machine's network address."""
    names = ["localhost", "127.0.0.1", *([lan_ip] if lan_ip else [])]
    return tuple(part for name in names for part in ("--server.allowedHosts", name))


def http(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@contextlib.contextmanager
def served(run: Run, name: str, env: dict[str, str], options: tuple[str, ...] = ()) -> Iterator[Server]:
    server = start_server(env, run.folder("logs") / f"{name}.log", options)
    try:
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def chromium(run: Run, dialogs: list[str], extra_args: tuple[str, ...] = ()) -> Iterator[Page]:
    """A Chromium page; every dialog it opens (alert, confirm...) is recorded in ``dialogs`` and dismissed."""
    from playwright.sync_api import sync_playwright

    check(CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()

            def opened(dialog: Dialog) -> None:
                dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

            page.on("dialog", opened)
            try:
                yield page
            except BaseException:
                screenshot(run, page, "failure")  # what the browser showed
                raise
        finally:
            browser.close()


def screenshot(run: Run, page: Page, name: str) -> None:
    with contextlib.suppress(Exception):  # a picture for reading, never the verdict
        page.screenshot(path=str(run.folder("screenshots") / f"{name}.png"), full_page=True)


def xss_envelope(tweet_id: str) -> dict:
    return {
        "data": {
            "id": tweet_id,
            "text": XSS,
            "created_at": "2026-11-30T12:00:00.000Z",
            "author_id": "42",
            "lang": "en",
        },
        "includes": {"users": [{"id": "42", "username": "exposure", "name": "Exposure scenario"}]},
    }


@scenario(8, "exposure")
def exposure_scenario(run: Run) -> None:
    dialogs: list[str] = []  # every dialog any page opened: an executed onerror=alert(1) would show here
    bypasses: list[str] = []  # pages a fresh server showed without the gate
    lan_ip = non_loopback_ipv4()
    run.note(f"this machine's non-loopback IPv4 address: {lan_ip or 'none (checks through it are skipped)'}")
    password = f"exposure-canary-{secrets.token_urlsafe(12)}"
    # Beyond loopback the browser uses this machine's address as Host: listed as config.toml's comment says.
    everywhere = ("--server.address", "0.0.0.0", *hosts_option(lan_ip))
    with run.broker() as broker:
        state_dir = run.folder("console-state")
        no_secrets = run.folder("secrets") / "absent.toml"
        env = local_console_env(state_dir, no_secrets, broker.port, broker.controller_port)
        check_env = job_env(state_dir, **env)

        # -- a. the default config: 127.0.0.1 only.
        with served(run, "a-default", env) as server:
            sockets = listening(server.process.pid)
            run.note(f"a. default config: the server (pid {server.process.pid}) listens on {', '.join(sockets)}")
            check(sockets != [], "the server listens on nothing")
            check(
                all(s.rsplit(":", 1)[0] in ("127.0.0.1", "::1") for s in sockets),
                f"the default config listens beyond loopback: {sockets}",
            )
            if lan_ip:
                check(not connects(lan_ip, server.port), f"{lan_ip}:{server.port} accepts a connection")
                run.note(f"a. a connection to {lan_ip}:{server.port} is refused")
            rebinding(run, server, broker.port, dialogs)
        default = exposure_check(check_env)
        run.note(f"a. python -m backend.console.exposure check: exit {default.returncode}: {default.stdout.strip()}")
        check(default.returncode == 0, f"check refuses the default config: {default.stderr.strip()}")

        # -- b. 0.0.0.0 without authentication: refused, nothing of the console shown.
        refused = exposure_check(check_env, "--server.address", "0.0.0.0")
        run.note(f"b. python -m backend.console.exposure check --server.address 0.0.0.0: exit {refused.returncode}")
        check(refused.returncode == 2, f"check exits {refused.returncode}, not 2: {refused.stdout}{refused.stderr}")
        check("no authentication is configured" in refused.stderr, f"check says: {refused.stderr.strip()}")
        with served(run, "b-no-auth", env, everywhere) as server, chromium(run, dialogs) as page:
            sockets = listening(server.process.pid)
            run.note(f"b. on 0.0.0.0 the server listens on {', '.join(sockets)}")
            host = lan_ip or "127.0.0.1"
            bypasses += first_request(run, page, f"http://{host}:{server.port}", "setup")
            for path in ("", "topics", "producer", "setup"):
                page.goto(f"http://{host}:{server.port}/{path}")
                drawn(page, f"/{path}")  # anything else would have been drawn with the refusal
                alert = page.get_by_test_id("stAlert").filter(has_text="refuses to serve")
                check(alert.count() == 1, f"/{path} does not show the refusal")
                shown = page.evaluate(CONSOLE_SHOWN)
                html = page.content()
                check(
                    shown == {"nav": 0, "sidebar": 0, "headings": []},
                    f"/{path} shows the console beside the refusal: {shown}",
                )
                check(f"127.0.0.1:{broker.port}" not in html, f"/{path} shows the broker's address")
                check(page.get_by_test_id("stAlert").count() == 1, f"/{path} shows more than the refusal")
            screenshot(run, page, "b-refused")
            run.note(f"b. http://{host}:{server.port}/ (and /topics, /producer, /setup): {alert.inner_text()[:90]!r}…")

        # -- c, d, e. 0.0.0.0 with a console password.
        secrets_file = run.folder("secrets") / "secrets.toml"
        secrets_file.write_text(f'console_password = "{password}"\n')
        secrets_file.chmod(0o600)
        env = local_console_env(state_dir, secrets_file, broker.port, broker.controller_port)
        allowed = exposure_check(job_env(state_dir, **env), "--server.address", "0.0.0.0")
        check(allowed.returncode == 0, f"check refuses a console password: {allowed.stderr.strip()}")
        run.note(f"c. check --server.address 0.0.0.0 with a console password: exit {allowed.returncode}")

        sent_directly = produce_directly(broker.bootstrap)
        run.result.sent += 1
        run.result.acked += sent_directly
        job_code, summary = produce_with_the_job(run, broker.bootstrap, state_dir)
        check(job_code == 0 and summary is not None, f"the producer job exited {job_code}: {summary}")
        assert summary is not None
        run.result.sent += int(summary["sent"])
        run.result.acked += int(summary["acked"])
        run.note(f"e. sent {run.result.sent} XSS tweets ({sent_directly} by confluent_kafka, the job: {summary})")

        with served(run, "c-password", env, everywhere) as server, chromium(run, dialogs) as page:
            base = f"http://{lan_ip or '127.0.0.1'}:{server.port}"
            bypasses += first_request(run, page, base, "producer")
            log_in(run, page, base, password)
            xsrf(run, page, base)
            shown_as_text(run, page)
            html = page.content()
            check(password not in html, "the password is in the page's HTML")
            log = server.log_file.read_text(errors="replace")
            command_line = " ".join(psutil.Process(server.process.pid).cmdline())
            check(password not in log, "the password is in the server's log")
            check(password not in command_line, "the password is on the server's command line")
            run.note(
                f"c. the password is in none of: the page HTML, the server log ({len(log)} chars), its command line"
            )

        # -- f. 127.0.0.1 with the console password: a TLS proxy's upstream, where the password applies too.
        proxied = exposure_check(job_env(state_dir, **env))
        run.note(f"f. check (127.0.0.1) with a console password: exit {proxied.returncode}: {proxied.stdout.strip()}")
        check(
            proxied.returncode == 0 and "enter the console password" in proxied.stdout,
            f"check on 127.0.0.1 with a console password says: {proxied.stdout.strip()}{proxied.stderr.strip()}",
        )
        with served(run, "f-loopback-password", env) as server, chromium(run, dialogs) as page:
            bypasses += first_request(run, page, server.url, "topics")
            check(page.get_by_label("Console password").count() == 1, "127.0.0.1 does not ask for the password")
            shown = page.evaluate(CONSOLE_SHOWN)
            check(shown["nav"] == 0 and shown["sidebar"] == 0, f"127.0.0.1 shows the console before the login: {shown}")
            run.note(f"f. {server.url}/topics, a fresh server's first request: the password form only ({shown})")
            brute_force(run, server, password)

        check(dialogs == [], f"dialogs opened: {dialogs}")
        run.note("e. no dialog opened on any page")
        run.result.lost = max(0, run.result.acked - run.result.stored)
    # Checked last, so that the figures above are there either way.
    check(
        not bypasses,
        "; ".join(bypasses) + " (Streamlit's pages-directory mode runs pages/NAME.py without app.py, hence without "
        "its gate, until st.navigation has run once in the server's process)",
    )


REBINDING_HOST = "rebinding.example"  # the name a hostile page would point at 127.0.0.1
BRUTE_SESSIONS = 20
BRUTE_GUESSES = 4  # wrong passwords per session


def ws_handshake(port: int, host: str, origin: str) -> int:
    """The status of a websocket handshake on Streamlit's /_stcore/stream with this Host and Origin (101: accepted)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        status_line = connection.recv(4096).decode(errors="replace").split("\r\n")[0]
    return int(status_line.split()[1])


def upload_put(base: str, headers: dict[str, str]) -> int:
    """An upload PUT (Streamlit's one state-changing HTTP route) with made-up session and file ids."""
    boundary = "exposure" + uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    ).encode()
    form = {"Content-Type": f"multipart/form-data; boundary={boundary}", **headers}
    return http("PUT", f"{base}/_stcore/upload_file/{uuid.uuid4()}/{uuid.uuid4()}", body, form)


def rebinding(run: Run, server: Server, broker_port: int, dialogs: list[str]) -> None:
    """g. A page whose own name points at 127.0.0.1 (DNS rebinding) gets nothing of the console."""
    port = server.port
    foreign = f"{REBINDING_HOST}:{port}"
    own = ws_handshake(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")
    refused = ws_handshake(port, foreign, f"http://{foreign}")
    put = upload_put(server.url, {"Host": foreign, "Origin": f"http://{foreign}"})
    run.note(f"g. websocket handshake with Host/Origin 127.0.0.1: {own}; with {foreign}: {refused}; upload PUT: {put}")
    check(own == 101, f"the console's own websocket handshake gets {own}, so the 403 below proves nothing")
    check(refused == 403, f"a websocket with Host and Origin {foreign} gets {refused}, not 403")
    check(put == 403, f"an upload PUT with Host and Origin {foreign} gets {put}, not 403")
    request = urllib.request.Request(f"{server.url}/", headers={"Host": foreign, "Origin": f"http://{foreign}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # Streamlit checks Host on the websocket only
        shell = response.read().decode(errors="replace")
    check(f"127.0.0.1:{broker_port}" not in shell and "Tweet stream" not in shell, "the static page holds the console")

    resolve = (f"--host-resolver-rules=MAP {REBINDING_HOST} 127.0.0.1",)
    with chromium(run, dialogs, resolve) as page:
        refusals: list[str] = []
        frames: list[int] = []

        def opened(socket_: WebSocket) -> None:
            socket_.on("socketerror", lambda error: refusals.append(error))
            socket_.on("framereceived", lambda _frame: frames.append(1))

        page.on("websocket", opened)
        page.goto(f"http://{foreign}/")
        deadline = time.monotonic() + PAGE_MS / 1000
        while sum("403" in error for error in refusals) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(200)  # the frontend retries its websocket; two refusals are enough
        shown = page.evaluate(CONSOLE_SHOWN)
        html = page.content()
        screenshot(run, page, "g-rebinding")
    run.note(
        f"g. Chromium at http://{foreign}/ (resolved to 127.0.0.1): {len(refusals)} websocket refusals "
        f"({refusals[0] if refusals else 'none'}), {len(frames)} frames received, shown {shown}"
    )
    check(sum("403" in error for error in refusals) >= 2, f"the rebinding page's websocket was not refused: {refusals}")
    check(frames == [], f"the rebinding page received {len(frames)} websocket frames")
    check(shown == {"nav": 0, "sidebar": 0, "headings": []}, f"the rebinding page shows the console: {shown}")
    check(f"127.0.0.1:{broker_port}" not in html, "the rebinding page shows the broker's address")


class StreamlitSession:
    """One browser session as Streamlit's frontend speaks it: BackMsg/ForwardMsg protobufs over /_stcore/stream."""

    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect

        self.socket = connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None)

    def run(self, widgets: list[WidgetState] | None = None) -> list[Element]:
        """Rerun the script with these widget states; the elements it drew."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = ""
        message.rerun_script.widget_states.widgets.extend(widgets or [])
        self.socket.send(message.SerializeToString())
        elements = []
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(self.socket.recv(timeout=PAGE_MS / 1000))
            if forward.WhichOneof("type") == "delta" and forward.delta.WhichOneof("type") == "new_element":
                elements.append(forward.delta.new_element)
            if forward.WhichOneof("type") == "script_finished":
                return elements

    def submit(self, form: list[Element], password: str) -> list[str]:
        """Type ``password`` into the gate's form and submit it; the alerts of the answer."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        field = next(e.text_input for e in form if e.WhichOneof("type") == "text_input")
        button = next(e.button for e in form if e.WhichOneof("type") == "button")
        answer = self.run(
            [WidgetState(id=field.id, string_value=password), WidgetState(id=button.id, trigger_value=True)]
        )
        return [e.alert.body for e in answer if e.WhichOneof("type") == "alert"]

    def close(self) -> None:
        self.socket.close()


def brute_force(run: Run, server: Server, password: str) -> None:
    """h. 20 sessions guess at once; the server-wide count compares 5 guesses, refuses the rest, then the right one."""
    answers: list[str] = []
    failures: list[str] = []
    barrier = threading.Barrier(BRUTE_SESSIONS)

    def guess(number: int) -> None:
        try:
            session = StreamlitSession(server.port)
            try:
                form = session.run()
                barrier.wait(timeout=PAGE_MS / 1000)
                for attempt in range(BRUTE_GUESSES):
                    alerts = session.submit(form, f"wrong-{number}-{attempt}")
                    said = [a.split(":")[0].split(",")[0] for a in alerts if "wrong password" in a.lower()]
                    answers.append(said[0] if said else str(alerts))
            finally:
                session.close()
        except Exception as error:  # said in the verdict below
            failures.append(f"session {number}: {error!r}")

    began = time.monotonic()
    threads = [threading.Thread(target=guess, args=(n,)) for n in range(BRUTE_SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * PAGE_MS / 1000)
    took = time.monotonic() - began
    latecomer = StreamlitSession(server.port)
    try:
        alerts = latecomer.submit(latecomer.run(), password)
    finally:
        latecomer.close()
    counted = {answer: answers.count(answer) for answer in sorted(set(answers))}
    run.note(
        f"h. {BRUTE_SESSIONS} sessions x {BRUTE_GUESSES} wrong passwords in parallel ({took:.1f} s): {counted}; "
        f"a 21st session with the right password: {alerts[-1] if alerts else alerts!r}"
    )
    check(not failures, f"brute-force sessions failed: {failures[:3]}")
    check(
        len(answers) == BRUTE_SESSIONS * BRUTE_GUESSES, f"{len(answers)} answers, not {BRUTE_SESSIONS * BRUTE_GUESSES}"
    )
    # "Wrong password...": compared (and answered after 1 s); "Too many wrong passwords": refused uncompared.
    check(counted.get("Wrong password", 0) <= 5, f"more than 5 guesses compared: {counted}")
    check(
        bool(alerts) and alerts[-1].startswith("Too many wrong passwords"),
        f"the right password, right after the brute force, got: {alerts}",
    )


def produce_directly(bootstrap: str) -> int:
    """Create the topic (1 partition) and send one XSS tweet with confluent_kafka; how many were acknowledged."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(timeout=30)
    delivered: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    producer.produce(
        TOPIC,
        key=b"exposure-1",
        value=json.dumps(xss_envelope("exposure-1")).encode(),
        on_delivery=lambda error, message: delivered.append(message) if error is None else None,
    )
    check(producer.flush(30) == 0, "the XSS tweet was not acknowledged within 30 s")
    return len(delivered)


def produce_with_the_job(run: Run, bootstrap: str, state_dir: Path) -> tuple[int, dict | None]:
    """The producer job replays one XSS tweet, writing its status (with the latest-messages sample)
    where the console reads it."""
    replay = run.folder("input") / "xss.jsonl"
    replay.write_text(json.dumps(xss_envelope("exposure-2")) + "\n")
    return run_job(
        "jobs.producer",
        ["--source", "replay", "--file", str(replay), "--topic", TOPIC, "--bootstrap", bootstrap],
        state_dir,
        run.folder("logs") / "producer.log",
        timeout=120,
    )


def first_request(run: Run, page: Page, base: str, path: str) -> list[str]:
    """A fresh server whose first request names a page (/setup): what of that page it shows (nothing, or
    a bypass of the gate)."""
    page.goto(f"{base}/{path}")
    drawn(page, f"/{path}")  # the whole page, whatever it is
    # A fresh page may report "not running" before its first run has begun (seen once under load: nothing
    # drawn yet): wait until it shows the gate or a page of the console, whichever it is.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(SOMETHING_SHOWN, arg=sorted(PAGE_HEADINGS), timeout=PAGE_MS)
    drawn(page, f"/{path}")
    headings = page.evaluate(CONSOLE_SHOWN)["headings"]
    leaked = [h for h in headings if h in PAGE_HEADINGS]
    gate = page.get_by_test_id("stAlert").filter(has_text="refuses to serve").count() + (
        page.get_by_label("Console password").count()
    )
    screenshot(run, page, f"first-request-{path}")
    if leaked or not gate:
        run.note(f"BYPASS: /{path} as the fresh server's first request shows the page itself: headings {leaked}")
        return [f"/{path}, the first request to a fresh server, shows {leaked} without the gate"]
    run.note(f"/{path} as the fresh server's first request: the gate only (headings {headings})")
    return []


def drawn(page: Page, what: str) -> None:
    """Wait until the page's script run has ended: everything it draws is then in the DOM."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(SCRIPT_DONE).wait_for(state="attached", timeout=PAGE_MS)
    except PlaywrightTimeout:
        state = page.evaluate(
            '() => document.querySelector(\'[data-testid="stApp"]\')?.getAttribute("data-test-script-state")'
        )
        raise ScenarioFailed(
            f"{what}: the app's script run did not end within {PAGE_MS / 1000:g} s (data-test-script-state: {state!r})"
        ) from None


def log_in(run: Run, page: Page, base: str, password: str) -> None:
    """c. The password form; a wrong password refused; the right one opens the console."""
    page.goto(base + "/")
    field = page.get_by_label("Console password")
    field.wait_for(timeout=PAGE_MS)
    check(field.get_attribute("type") == "password", "the password field does not mask what is typed")
    check(page.evaluate(CONSOLE_SHOWN)["nav"] == 0, "the console's navigation shows before the login")
    screenshot(run, page, "c-form")

    field.fill(f"wrong-{uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="Open the console").click()
    page.get_by_text("Wrong password: the console stays closed.").wait_for(timeout=PAGE_MS)
    shown = page.evaluate(CONSOLE_SHOWN)
    check(shown["nav"] == 0 and shown["sidebar"] == 0, f"a wrong password shows the console: {shown}")
    check(page.get_by_label("Console password").input_value() == "", "the wrong password stays in the field")
    run.note("c. a wrong password: 'Wrong password: the console stays closed.', no navigation, no sidebar")
    screenshot(run, page, "c-wrong")

    page.get_by_label("Console password").fill(password)
    page.get_by_role("button", name="Open the console").click()
    page.get_by_test_id("stTopNavLink").first.wait_for(timeout=PAGE_MS)
    page.get_by_role("heading", name="Tweet stream console", level=1).wait_for(timeout=PAGE_MS)
    # The sidebar's live state.
    page.get_by_test_id("stSidebarUserContent").get_by_text("Kafka broker", exact=True).wait_for(timeout=PAGE_MS)
    shown = page.evaluate(CONSOLE_SHOWN)
    run.note(f"c. the right password: the console ({shown['nav']} navigation links, headings {shown['headings']})")
    screenshot(run, page, "c-console")


def xsrf(run: Run, page: Page, base: str) -> None:
    """d. Streamlit checks the XSRF token (cookie _streamlit_xsrf and header X-Xsrftoken) before anything
    else on the upload route; without them a PUT or DELETE is refused."""
    url = f"{base}/_stcore/upload_file/{uuid.uuid4()}/{uuid.uuid4()}"
    boundary = "exposure" + uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    ).encode()
    form = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    without_put = http("PUT", url, body, form)
    without_delete = http("DELETE", url)
    cookie = next((c["value"] for c in page.context.cookies() if c["name"] == "_streamlit_xsrf"), None)
    check(cookie is not None, "the page set no _streamlit_xsrf cookie (is XSRF protection on?)")
    assert cookie is not None
    with_token = http("PUT", url, body, {**form, "Cookie": f"_streamlit_xsrf={cookie}", "X-Xsrftoken": cookie})
    run.note(
        f"d. upload PUT without the XSRF token: {without_put}; DELETE without it: {without_delete}; "
        f"the PUT with the page's token: {with_token} (past the XSRF check; the session id is made up)"
    )
    check(without_put == 403 and without_delete == 403, f"no XSRF token, yet {without_put} / {without_delete}")
    check(with_token != 403, f"the page's own XSRF token is refused too ({with_token}): the 403 proves nothing")


def shown_as_text(run: Run, page: Page) -> None:
    """e. The XSS tweets on Topics (message browser, and a search for the markup itself) and Producer."""
    page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(r"Topics$")).click()
    page.get_by_role("heading", name="Message browser").wait_for(timeout=PAGE_MS)
    page.get_by_label("Messages (at most").fill("10")
    page.get_by_label("Only messages containing").fill(XSS)
    page.get_by_role("button", name="Read messages").click()
    page.get_by_text(re.compile(r"^2 messages read, 2 contain")).wait_for(timeout=PAGE_MS)
    found = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"partition \d+ · offset \d+ · "))
    with contextlib.suppress(Exception):  # the expanders are drawn one after the other
        found.nth(1).wait_for(timeout=PAGE_MS)
    check(found.count() == 2, f"the browser lists {found.count()} messages, not 2")
    texts = []
    for index in range(found.count()):
        expander = found.nth(index)
        expander.locator("summary").click()
        code = expander.get_by_test_id("stCode")
        code.wait_for(timeout=PAGE_MS)
        check(code.is_visible(), "the message's value is not visible")
        value = json.loads(code.text_content() or "{}")
        texts.append(value.get("data", {}).get("text"))
    page.wait_for_timeout(1500)  # an onerror handler would have fired by now
    injected = page.evaluate(INJECTED)
    caption = page.get_by_text(re.compile(r"^2 messages read")).inner_text()
    run.note(f"e. Topics: {texts}; the search caption: {caption!r}; injected markup: {injected}")
    check(texts == [XSS, XSS], f"the message browser shows {texts}")
    check(XSS in caption, f"the searched text is not shown as typed: {caption!r}")
    check(injected == {"img": 0, "onerror": 0}, f"the tweet's markup was rendered: {injected}")
    run.result.stored = texts.count(XSS)
    screenshot(run, page, "e-topics")

    page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(r"Producer$")).click()
    page.get_by_role("heading", name="Producer", level=1).wait_for(timeout=PAGE_MS)
    rows = page.wait_for_function(
        f"() => {{ const rows = ({DATAFRAME_ROWS})('id'); return rows && rows.length ? rows : null; }}",
        timeout=PAGE_MS,
        polling=250,
    ).json_value()
    page.wait_for_timeout(1500)
    injected = page.evaluate(INJECTED)
    run.note(f"e. Producer latest messages: {rows}; injected markup: {injected}")
    check({"id": "exposure-2", "text": XSS} in rows, f"the latest messages show {rows}")
    check(injected == {"img": 0, "onerror": 0}, f"the tweet's markup was rendered: {injected}")
    screenshot(run, page, "e-producer")
