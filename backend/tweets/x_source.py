"""The producer's ``--source x``: Posts from X's filtered stream, or from recent search, until stopped.

It follows X's documented rules for disconnections and pagination (docs/design.md, "The X source"). Every blocking
call runs on a helper thread, so that setting the caller's ``stop`` event ends the iterator within a fraction of a
second, however long X keeps a read waiting.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from backend.tweets.x_client import (
    CONNECT_TIMEOUT_S,
    FIELD_PARAMS,
    SEARCH_PAGE_SIZE,
    SEARCH_PATH,
    STREAM_PATH,
    USER_AGENT,
    XApiError,
    XSourceConfig,
    auth_headers,
    clean_token,
    describe_network_error,
    envelope,
    envelope_from_users,
    http_error,
    parse_json,
    problem_detail,
    request_json,
    scrub,
    sync_rules,
    users_by_id,
)
from backend.tweets.x_reconnect import ReconnectPolicy, is_rate_limit

log = logging.getLogger(__name__)

_POLL_S = 0.1  # how often a wait on a helper thread looks at the stop event
T = TypeVar("T")


def iter_tweets(
    config: XSourceConfig,
    token: str,
    stop: threading.Event,
    report: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[dict]:
    """Yield Posts as v2 envelopes ``{"data": post, "includes": {"users": [author]}}`` until ``stop``.

    Stream mode syncs the rules (sync_rules), then reads the filtered stream, reconnecting
    per ReconnectPolicy; search mode polls recent search (see _search). ``report`` receives
    one human-readable line per change of state (connected, dropped, backing off...). Waits
    are ``stop.wait(delay)``, or ``sleep(delay)`` when given (tests). Raises XApiError when
    retrying cannot help.
    """
    run = _Run(config=config, token=clean_token(token), stop=stop, user_report=report, sleep=sleep)
    with requests.Session() as session:
        session.headers["User-Agent"] = USER_AGENT
        if config.mode == "stream":
            yield from _stream(run, session)
        else:
            yield from _search(run, session)


@dataclass
class _Run:
    """What one iter_tweets call carries around."""

    config: XSourceConfig
    token: str
    stop: threading.Event
    user_report: Callable[[str], None] | None
    sleep: Callable[[float], None] | None

    def report(self, message: str) -> None:
        message = scrub(message, self.token)
        log.info("%s", message)
        if self.user_report is not None:
            self.user_report(message)

    def wait(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False when ``stop`` is set (now or meanwhile)."""
        if self.sleep is not None:
            self.sleep(delay)
            return not self.stop.is_set()
        return not self.stop.wait(delay)


def _stream(run: _Run, session: requests.Session) -> Iterator[dict]:
    policy = ReconnectPolicy()
    synced = _retrying(run, policy, lambda: sync_rules(session, run.config, run.token))
    if synced is None:
        return
    if run.config.query is None:
        if synced.kept:
            run.report(f"rules kept as they are: {len(synced.kept)} rule(s)")
        else:
            run.report("no stream rules: the filtered stream delivers nothing until a rule is added")
    else:
        run.report(f"rules synced: added {len(synced.added)}, deleted {len(synced.deleted)}")
    policy.reset()
    while not run.stop.is_set():
        delay = yield from _one_connection(run, session, policy)
        if delay is None or not run.wait(delay):
            return


def _one_connection(
    run: _Run, session: requests.Session, policy: ReconnectPolicy
) -> Generator[dict, None, float | None]:
    """Read one connection to the filtered stream; return the delay before the next, None when stopped."""
    reader = _StreamReader(
        session,
        run.config.base_url.rstrip("/") + STREAM_PATH,
        run.token,
        (CONNECT_TIMEOUT_S, run.config.read_timeout_s),
    )
    reader.start()
    disconnect: str | None = None  # X's reason, when it said why it is closing the stream
    try:
        while not run.stop.is_set():
            try:
                kind, value = reader.events.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if kind == "connected":
                policy.reset()
                run.report("connected to the filtered stream")
            elif kind == "line":
                if not value.strip():
                    continue  # a heartbeat
                message = parse_json(value)
                if message is None:
                    run.report("skipped a line of the filtered stream that is not JSON")
                elif isinstance(message.get("data"), dict):
                    yield envelope(message["data"], message.get("includes"))
                elif message.get("errors"):
                    disconnect = problem_detail(message)
            elif kind == "end" or (kind == "network_error" and disconnect is not None):
                reason = f" ({disconnect})" if disconnect else ""
                run.report(f"stream dropped{reason}, reconnecting now")
                return policy.after_drop()
            elif kind == "network_error":
                delay = policy.after_network_error()
                what = describe_network_error(value, run.config.read_timeout_s)
                run.report(f"network error on the filtered stream ({what}), reconnecting in {_seconds(delay)}")
                return delay
            elif kind == "http_error":
                error = http_error(*value, what="the filtered stream", mode="stream", token=run.token)
                if not error.retryable:
                    raise error
                delay = policy.after_http_error(value[0])
                run.report(f"HTTP {value[0]} from the filtered stream, reconnecting in {_seconds(delay)}")
                return delay
            else:  # "crash": a bug on the reader thread, not X's doing
                raise value
        return None
    finally:
        reader.abandoned.set()


class _StreamReader(threading.Thread):
    """One connection to the filtered stream, read on its own thread and passed on as events.

    Events: ("connected", None), ("line", bytes) per line (b"" for a heartbeat), ("end", None)
    when X closes the stream, ("network_error", exc), ("http_error", (status, headers, text))
    and ("crash", exc). Once ``abandoned`` is set the thread ends at its next read, which the
    read timeout bounds.
    """

    def __init__(self, session: requests.Session, url: str, token: str, timeout: tuple[float, float]) -> None:
        super().__init__(name="x-filtered-stream", daemon=True)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1000)
        self.abandoned = threading.Event()
        self._session = session
        self._url = url
        self._token = token
        self._timeout = timeout

    def run(self) -> None:
        try:
            self._read()
        except (requests.RequestException, OSError) as exc:
            self._put(("network_error", exc))
        except Exception as exc:
            self._put(("crash", exc))

    def _read(self) -> None:
        with self._session.get(
            self._url,
            params=FIELD_PARAMS,
            headers=auth_headers(self._token),
            stream=True,
            timeout=self._timeout,
        ) as response:
            if response.status_code != 200:
                self._put(("http_error", (response.status_code, dict(response.headers), response.text)))
                return
            if not self._put(("connected", None)):
                return
            # chunk_size=None: hand over each chunk as it arrives, a lone heartbeat included.
            for line in response.iter_lines(chunk_size=None):
                if not self._put(("line", line)):
                    return
        self._put(("end", None))

    def _put(self, event: tuple[str, Any]) -> bool:
        """Pass ``event`` on, waiting while the queue is full; False once nobody listens."""
        while not self.abandoned.is_set():
            try:
                self.events.put(event, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False


def _search(run: _Run, session: requests.Session) -> Iterator[dict]:
    """Poll recent search every search_interval_s, each Post once, oldest first within a poll.

    The first poll takes only the newest page (up to 100 Posts): paging through the whole
    7-day backlog would spend the rate limit and the monthly Post cap before anything new
    arrives. Later polls ask for everything newer than the newest Post seen (``since_id``),
    page by page; a poll that fails part way is discarded whole and asked again, so nothing
    is yielded twice or skipped.
    """
    policy = ReconnectPolicy()
    since_id: str | None = None
    healthy = False
    while not run.stop.is_set():
        try:
            posts = _call_unless_stopped(run.stop, functools.partial(_poll_search, run, session, since_id))
        except XApiError as error:
            if not error.retryable:
                raise
            healthy = False
            delay = _backoff(policy, error)
            run.report(f"{error}, retrying in {_seconds(delay)}")
            if not run.wait(delay):
                return
            continue
        if posts is None or run.stop.is_set():  # stopped while waiting for X, or between pages
            return
        policy.reset()
        if not healthy:
            run.report(f"connected to recent search, polling every {_seconds(run.config.search_interval_s)}")
            healthy = True
        for post in posts:
            yield post
            since_id = post["data"]["id"]
            if run.stop.is_set():
                return
        if not run.wait(run.config.search_interval_s):
            return


def _poll_search(run: _Run, session: requests.Session, since_id: str | None) -> list[dict]:
    """One poll of recent search: the new Posts as envelopes, oldest first."""
    url = run.config.base_url.rstrip("/") + SEARCH_PATH
    params: dict[str, str] = {"query": str(run.config.query), "max_results": str(SEARCH_PAGE_SIZE), **FIELD_PARAMS}
    if since_id is not None:
        params["since_id"] = since_id
    posts: dict[str, dict] = {}
    while True:
        body = request_json(session, "GET", url, run.token, "recent search", mode="search", params=params)
        users = users_by_id(body.get("includes"))
        for post in body.get("data") or []:
            if isinstance(post, dict) and "id" in post:
                posts[str(post["id"])] = envelope_from_users(post, users)
        next_token = (body.get("meta") or {}).get("next_token")
        if not next_token or since_id is None or run.stop.is_set():
            break
        params["next_token"] = str(next_token)
    # Post ids grow with time; sorting by them gives the oldest first whatever the page order.
    return [posts[key] for key in sorted(posts, key=_id_order)]


def _id_order(post_id: str) -> tuple[int, str]:
    return (int(post_id), post_id) if post_id.isdigit() else (-1, post_id)


def _retrying(run: _Run, policy: ReconnectPolicy, call: Callable[[], T]) -> T | None:
    """``call()`` until it succeeds, backing off on retryable errors; None when stopped."""
    while not run.stop.is_set():
        try:
            result = _call_unless_stopped(run.stop, call)
        except XApiError as error:
            if not error.retryable:
                raise
            delay = _backoff(policy, error)
            run.report(f"{error}, retrying in {_seconds(delay)}")
            if not run.wait(delay):
                return None
            continue
        return result
    return None


def _backoff(policy: ReconnectPolicy, error: XApiError) -> float:
    """The delay before retrying after a retryable ``error`` of a REST call."""
    if error.status is None:
        return policy.after_network_error()
    if is_rate_limit(error.status) and _until(error.rate_limit_reset) > 0:
        # X says when the window reopens (in whole seconds: one more for safety); capped in
        # case the clocks disagree.
        return min(_until(error.rate_limit_reset) + 1.0, ReconnectPolicy.RATE_LIMIT_MAX_S)
    return policy.after_http_error(error.status)


def _call_unless_stopped(stop: threading.Event, call: Callable[[], T]) -> T | None:
    """Run a blocking ``call`` on a helper thread; None as soon as ``stop`` is set.

    An abandoned call goes on until its own timeout; its result is dropped.
    """
    outcome: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def target() -> None:
        try:
            outcome.put((True, call()))
        except BaseException as exc:  # handed to the caller's thread, which raises it
            outcome.put((False, exc))

    threading.Thread(target=target, name="x-api-call", daemon=True).start()
    while True:
        try:
            ok, value = outcome.get(timeout=_POLL_S)
        except queue.Empty:
            if stop.is_set():
                return None
            continue
        if ok:
            return value
        raise value


def _seconds(delay: float) -> str:
    return f"{round(delay, 2):g} s"


def _until(epoch_s: float | None) -> float:
    """Seconds from now until ``epoch_s``; 0 when unknown or past."""
    return max(epoch_s - time.time(), 0.0) if epoch_s is not None else 0.0
