"""The alerts' webhook: Slack-compatible JSON POSTs ({"text": ...}) sent from a thread of its own.

A message waits in a queue; the sender tries it a few times with a bounded timeout and a pause that doubles,
so a slow or dead receiver never holds up a page or the monitor's sampling. The URL is a secret (an
incoming-webhook URL carries its token): it is never logged, and errors name only the HTTP status or the
exception's type.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

TIMEOUT_S = 5.0
ATTEMPTS = 3
FIRST_PAUSE_S = 2.0
MAX_QUEUED = 100  # beyond this, new messages are dropped (counted) rather than piling up


def post_json(url: str, payload: dict[str, str], timeout_s: float = TIMEOUT_S) -> None:
    """POST ``payload`` as JSON; raises on a non-2xx answer or no answer within ``timeout_s``."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


class Webhook:
    """Sends texts to one webhook URL, in order, off the caller's thread."""

    def __init__(
        self,
        url: str,
        post: Callable[[str, dict[str, str]], None] = post_json,
        attempts: int = ATTEMPTS,
        first_pause_s: float = FIRST_PAUSE_S,
    ) -> None:
        self._url = url
        self._post = post
        self.attempts = attempts
        self.first_pause_s = first_pause_s
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=MAX_QUEUED)
        self.sent = 0
        self.failed = 0  # messages given up after every attempt, or dropped from a full queue
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="tweetstream-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:  # never the URL
        return f"Webhook(sent={self.sent}, failed={self.failed})"

    def send(self, text: str) -> None:
        """Queue ``text``; returns at once."""
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            self.failed += 1

    def close(self) -> None:
        """Stop after the messages already queued."""
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while (text := self._queue.get()) is not None:
            self._deliver(text)

    def _deliver(self, text: str) -> None:
        pause = self.first_pause_s
        for attempt in range(self.attempts):
            try:
                self._post(self._url, {"text": text})
            except urllib.error.HTTPError as error:
                self.last_error = f"HTTP {error.code}"
            except Exception as error:  # a refused connection, a timeout: tried again
                self.last_error = type(error).__name__
            else:
                self.sent += 1
                return
            if attempt + 1 < self.attempts:
                time.sleep(pause)
                pause *= 2
        self.failed += 1
