"""The console as a user runs it: ``streamlit run app.py`` on a free port, as a real server.

Shared by the browser test and the fault scenarios; the caller chooses the state folder,
the environment and any further ``streamlit run`` options.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from backend.settings import PROJECT_ROOT
from tests.support import free_port

SERVER_START_TIMEOUT_S = 60.0
# Settings of whoever runs the tests: they must not change what a test's console or job does.
# A test passes what its console needs (a token, a password, a state folder) explicitly.
OUTSIDE_SETTINGS = ("TWEETSTREAM_", "X_BEARER_TOKEN", "DATABRICKS_", "AZURE_", "STREAMLIT_")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# The rows of the first st.dataframe whose header starts with `first`, as {column: text}
# (Streamlit draws the grid on a canvas; its accessible table holds the same text).
DATAFRAME_ROWS = """(first) => {
  for (const frame of document.querySelectorAll('[data-testid="stDataFrame"]')) {
    const rows = Array.from(frame.querySelectorAll('tr'), (tr) =>
      Array.from(tr.querySelectorAll('th, td'), (cell) => cell.textContent.trim()));
    if (rows.length < 2 || rows[0][0] !== first) continue;
    return rows.slice(1).map((row) => Object.fromEntries(rows[0].map((name, i) => [name, row[i]])));
  }
  return null;
}"""


class ServerFailed(RuntimeError):
    """The server exited or never answered; the message holds the end of its log."""


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def without_outside_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables of ``OUTSIDE_SETTINGS`` (PATH, HOME, JAVA_HOME... stay)."""
    return {name: value for name, value in environ.items() if not name.startswith(OUTSIDE_SETTINGS)}


def local_console_env(state_dir: Path, secrets_file: Path, broker_port: int, controller_port: int) -> dict[str, str]:
    """Settings that keep a test's console on its own state, broker and secrets file."""
    return {
        "TWEETSTREAM_STATE_DIR": str(state_dir),
        "TWEETSTREAM_KAFKA_PORT": str(broker_port),
        "TWEETSTREAM_KAFKA_CONTROLLER_PORT": str(controller_port),
        "TWEETSTREAM_KAFKA_HEAP": "512m",
        # The local broker, whatever profile a developer saved in .streamlit/secrets.toml.
        "TWEETSTREAM_BOOTSTRAP_SERVERS": "",
        "TWEETSTREAM_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        # Nor read or write the developer's secrets file.
        "TWEETSTREAM_SECRETS_FILE": str(secrets_file),
    }


def start_server(
    env: Mapping[str, str], log_file: Path, options: tuple[str, ...] = (), port: int | None = None
) -> Server:
    """Start the server with ``env`` over this process's environment without outside settings
    (``OUTSIDE_SETTINGS``: a developer's TWEETSTREAM_*, tokens, STREAMLIT_*); raises ServerFailed
    when it does not answer its health check within SERVER_START_TIMEOUT_S (it is then stopped)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)),
        *("--server.headless", "true"),
        # Files edited during the run must not change what the test sees.
        *("--server.fileWatcherType", "none"),
        *options,
    ]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**without_outside_settings(os.environ), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(url, port, process, log_file)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not healthy(url):
        if process.poll() is not None:
            raise ServerFailed(f"streamlit exited with {process.returncode}:\n{log_file.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            stop_server(server)
            raise ServerFailed(f"streamlit did not answer {url}/_stcore/health in {SERVER_START_TIMEOUT_S:g} s")
        time.sleep(0.2)
    return server


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@contextlib.contextmanager
def running_server(env: Mapping[str, str], log_file: Path, options: tuple[str, ...] = ()) -> Iterator[Server]:
    server = start_server(env, log_file, options)
    try:
        yield server
    finally:
        stop_server(server)
