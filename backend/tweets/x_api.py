"""The X API v2 client behind the producer's ``--source x``: the filtered stream, or recent search.

Follows X's documented rules (docs.x.com, "Handling disconnections" and "Recent search
pagination"): the stream's rules are synced once before connecting; the 20 s heartbeat is
watched with a read timeout; reconnections back off by the kind of failure (see
ReconnectPolicy); recent search is polled with ``since_id`` so that each Post is yielded once.

Every blocking call runs on a helper thread, so that setting the caller's ``stop`` event ends
the iterator within a fraction of a second, however long X keeps a read waiting.

The bearer token never appears in a message, an exception or a log line: it only goes into
the Authorization header, and every text built here is scrubbed of it for good measure.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import requests

log = logging.getLogger(__name__)

RULES_PATH = "/2/tweets/search/stream/rules"
STREAM_PATH = "/2/tweets/search/stream"
SEARCH_PATH = "/2/tweets/search/recent"
RULE_TAG = "tweetstream"  # the tag of the rule this console adds
# The fields the consumer reads; expansions=author_id puts the author in includes.users.
FIELD_PARAMS = {
    "tweet.fields": "created_at,lang,author_id,entities,referenced_tweets,conversation_id,public_metrics",
    "expansions": "author_id",
    "user.fields": "username,name,created_at,verified,public_metrics",
}
SEARCH_PAGE_SIZE = 100  # recent search's maximum max_results
CONNECT_TIMEOUT_S = 10.0
REST_READ_TIMEOUT_S = 30.0  # rules and recent search answer in well under this
USER_AGENT = "tweetstream-console/1.0"  # X asks for a client version in the user agent
_POLL_S = 0.1  # how often a wait on a helper thread looks at the stop event
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: what a header value may carry

Mode = Literal["stream", "search"]
T = TypeVar("T")


class XApiError(Exception):
    """A failure of the X API with a user-facing message (which never contains the token).

    ``iter_tweets`` lets only fatal ones out (bad token, forbidden endpoint, rejected rule...).
    ``sync_rules`` also raises the retryable ones (``retryable`` True: network errors, 5xx,
    429), which ``iter_tweets`` handles by backing off.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None for a network error or a local check
        self.retryable = retryable
        self.rate_limit_reset: float | None = None  # x-rate-limit-reset (epoch seconds) of a 429


@dataclass(frozen=True)
class XSourceConfig:
    """Where and how to read Posts from X; checked when made (XApiError)."""

    base_url: str  # settings.x_api_base_url
    query: str | None  # the rule value, e.g. "#Azure lang:en -is:retweet"; required for search
    mode: Mode = "stream"
    read_timeout_s: float = 20.0  # X sends a heartbeat every 20 s
    search_interval_s: float = 15.0  # the polling period of recent search

    def __post_init__(self) -> None:
        if self.mode not in ("stream", "search"):
            raise XApiError(f"unknown X mode {self.mode!r}: use 'stream' or 'search'")
        if self.query is not None and not self.query.strip():
            raise XApiError("the X query is empty")
        if self.mode == "search" and self.query is None:
            raise XApiError("recent search needs a query, e.g. '#Azure lang:en -is:retweet'")
        if self.read_timeout_s <= 0 or self.search_interval_s <= 0:
            raise XApiError("the X read timeout and search interval must be positive")


@dataclass(frozen=True)
class RuleSync:
    """What sync_rules did, as rule values."""

    added: list[str]
    deleted: list[str]
    kept: list[str]


class ReconnectPolicy:
    """X's documented reconnection schedule; pure, each method returns the delay in seconds.

    A connection that drops is retried at once. Failed attempts back off by kind, each kind
    counting its own failures until a connection succeeds (``reset``): network errors
    linearly (250 ms more each time, up to 16 s), HTTP errors exponentially (5 s doubling up
    to 320 s), rate limits (429, and 420 of old) exponentially from 60 s. X gives no cap for
    the last; 900 s is one whole 15-minute rate-limit window, past which waiting longer
    frees nothing more.
    """

    NETWORK_STEP_S = 0.25
    NETWORK_MAX_S = 16.0
    HTTP_FIRST_S = 5.0
    HTTP_MAX_S = 320.0
    RATE_LIMIT_FIRST_S = 60.0
    RATE_LIMIT_MAX_S = 900.0

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A connection succeeded: the next failure starts each schedule from its beginning."""
        self._network_failures = 0
        self._http_failures = 0
        self._rate_limits = 0

    def after_drop(self) -> float:
        return 0.0

    def after_network_error(self) -> float:
        self._network_failures += 1
        return min(self._network_failures * self.NETWORK_STEP_S, self.NETWORK_MAX_S)

    def after_http_error(self, status: int) -> float:
        if is_rate_limit(status):
            self._rate_limits = min(self._rate_limits + 1, 32)  # bounded: 2**31 is past any cap
            return min(self.RATE_LIMIT_FIRST_S * 2 ** (self._rate_limits - 1), self.RATE_LIMIT_MAX_S)
        self._http_failures = min(self._http_failures + 1, 32)
        return min(self.HTTP_FIRST_S * 2 ** (self._http_failures - 1), self.HTTP_MAX_S)


def is_rate_limit(status: int) -> bool:
    return status in (420, 429)


def is_retryable(status: int) -> bool:
    """Whether trying again later may help: rate limits, timeouts and server errors.

    Any other 4xx (bad request, bad token, forbidden, wrong URL) stays wrong until a human
    changes something.
    """
    return is_rate_limit(status) or status == 408 or status >= 500


# --- rules -------------------------------------------------------------------------------


def sync_rules(session: requests.Session, config: XSourceConfig, token: str) -> RuleSync:
    """Make the stream's rules the one rule ``config.query`` (tagged RULE_TAG).

    Rules with another value are deleted and the query is added unless present. With no
    query the rules are kept as they are. Raises XApiError (see its ``retryable``).
    """
    token = _clean_token(token)
    url = config.base_url.rstrip("/") + RULES_PATH
    body = _request_json(session, "GET", url, token, "the stream rules", mode=config.mode)
    rules = [rule for rule in body.get("data") or [] if isinstance(rule, dict)]
    if config.query is None:
        return RuleSync(added=[], deleted=[], kept=[str(rule.get("value")) for rule in rules])

    stale = [rule for rule in rules if rule.get("value") != config.query]
    present = len(stale) < len(rules)
    if stale:
        answer = _request_json(
            session,
            "POST",
            url,
            token,
            "the stream rules",
            mode=config.mode,
            json_body={"delete": {"ids": [str(rule.get("id")) for rule in stale]}},
        )
        summary = (answer.get("meta") or {}).get("summary") or {}
        if summary.get("not_deleted"):
            raise XApiError(_scrub(f"X did not delete stale stream rules: {_problem_detail(answer)}", token))
    if not present:
        answer = _request_json(
            session,
            "POST",
            url,
            token,
            "the stream rules",
            mode=config.mode,
            json_body={"add": [{"value": config.query, "tag": RULE_TAG}]},
        )
        summary = (answer.get("meta") or {}).get("summary") or {}
        duplicate = any(
            isinstance(error, dict) and error.get("title") == "DuplicateRule" for error in answer.get("errors") or []
        )
        if (summary.get("invalid") or summary.get("not_created")) and not duplicate:
            raise XApiError(
                _scrub(f"X rejected the stream rule {config.query!r}: {_problem_detail(answer)}", token),
                status=400,
            )
    return RuleSync(
        added=[] if present else [config.query],
        deleted=[str(rule.get("value")) for rule in stale],
        kept=[config.query] if present else [],
    )


# --- the tweets --------------------------------------------------------------------------


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
    run = _Run(config=config, token=_clean_token(token), stop=stop, user_report=report, sleep=sleep)
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
        message = _scrub(message, self.token)
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
                message = _parse_json(value)
                if message is None:
                    run.report("skipped a line of the filtered stream that is not JSON")
                elif isinstance(message.get("data"), dict):
                    yield _envelope(message["data"], message.get("includes"))
                elif message.get("errors"):
                    disconnect = _problem_detail(message)
            elif kind == "end" or (kind == "network_error" and disconnect is not None):
                reason = f" ({disconnect})" if disconnect else ""
                run.report(f"stream dropped{reason}, reconnecting now")
                return policy.after_drop()
            elif kind == "network_error":
                delay = policy.after_network_error()
                what = _describe_network_error(value, run.config.read_timeout_s)
                run.report(f"network error on the filtered stream ({what}), reconnecting in {_seconds(delay)}")
                return delay
            elif kind == "http_error":
                error = _http_error(*value, what="the filtered stream", mode="stream", token=run.token)
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
            headers=_auth_headers(self._token),
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
        body = _request_json(session, "GET", url, run.token, "recent search", mode="search", params=params)
        users = _users_by_id(body.get("includes"))
        for post in body.get("data") or []:
            if isinstance(post, dict) and "id" in post:
                posts[str(post["id"])] = _envelope_from_users(post, users)
        next_token = (body.get("meta") or {}).get("next_token")
        if not next_token or since_id is None or run.stop.is_set():
            break
        params["next_token"] = str(next_token)
    # Post ids grow with time; sorting by them gives the oldest first whatever the page order.
    return [posts[key] for key in sorted(posts, key=_id_order)]


def _id_order(post_id: str) -> tuple[int, str]:
    return (int(post_id), post_id) if post_id.isdigit() else (-1, post_id)


# --- helpers -----------------------------------------------------------------------------


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


def _request_json(
    session: requests.Session,
    method: str,
    url: str,
    token: str,
    what: str,
    *,
    mode: Mode,
    params: dict[str, str] | None = None,
    json_body: dict | None = None,
) -> dict:
    """One REST call to X; its JSON body, or XApiError."""
    try:
        response = session.request(
            method,
            url,
            params=params,
            json=json_body,
            headers=_auth_headers(token),
            timeout=(CONNECT_TIMEOUT_S, REST_READ_TIMEOUT_S),
        )
    except requests.RequestException as exc:
        detail = _describe_network_error(exc, REST_READ_TIMEOUT_S)
        raise XApiError(_scrub(f"network error on {what} ({detail})", token), retryable=True) from None
    if not response.ok:
        raise _http_error(
            response.status_code, dict(response.headers), response.text, what=what, mode=mode, token=token
        )
    body = _parse_json(response.content)
    if body is None:
        raise XApiError(f"{what}: X answered HTTP {response.status_code} with a body that is not JSON", retryable=True)
    return body


def _http_error(status: int, headers: dict[str, str], text: str, *, what: str, mode: Mode, token: str) -> XApiError:
    """The XApiError for an HTTP error ``status`` from ``what``."""
    body = _parse_json(text.encode()) or {}
    detail = _problem_detail(body) or text.strip()[:200]
    if status == 401:
        message = "X rejected the bearer token (HTTP 401): check X_BEARER_TOKEN"
    elif status == 403 and mode == "stream":
        message = (
            f"X refused {what} (HTTP 403): the app's access tier may not include the filtered stream;"
            f" try --x-mode search. X said: {detail}"
        )
    elif status == 403:
        message = f"X refused {what} (HTTP 403): the app's access tier may not include recent search. X said: {detail}"
    elif is_retryable(status):
        message = f"HTTP {status} from {what}"
    else:
        message = f"X rejected the request to {what} (HTTP {status}): {detail}"
    error = XApiError(_scrub(message, token), status=status, retryable=is_retryable(status))
    reset = {key.lower(): value for key, value in headers.items()}.get("x-rate-limit-reset")
    if reset is not None and reset.strip().isdigit():
        error.rate_limit_reset = float(reset)
    return error


def _seconds(delay: float) -> str:
    return f"{round(delay, 2):g} s"


def _until(epoch_s: float | None) -> float:
    """Seconds from now until ``epoch_s``; 0 when unknown or past."""
    return max(epoch_s - time.time(), 0.0) if epoch_s is not None else 0.0


def _clean_token(token: str) -> str:
    token = token.strip()
    if not token:
        raise XApiError("no X bearer token: set X_BEARER_TOKEN")
    if not _TOKEN_RE.fullmatch(token):
        # Checked here: requests would otherwise quote the bad header value in its exception.
        raise XApiError("X_BEARER_TOKEN holds spaces or characters a bearer token cannot have")
    return token


def _auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def _parse_json(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _problem_detail(body: dict) -> str:
    """A short text of X's problem JSON: its ``detail``/``title``, or those of its ``errors``."""
    parts: list[str] = []
    for problem in [body, *(body.get("errors") or [])]:
        if not isinstance(problem, dict):
            continue
        text = problem.get("detail") or problem.get("message") or problem.get("title")
        if text and str(text) not in parts:
            parts.append(str(text))
    return "; ".join(parts)[:300]


def _describe_network_error(exc: BaseException, read_timeout_s: float) -> str:
    """A short reason for a network error (requests' own text is long and names every parameter)."""
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout) or "Read timed out" in text:
        return f"no data or heartbeat for {read_timeout_s:g} s"
    if "Connection refused" in text:
        return "connection refused"
    if "Connection reset" in text or "Connection aborted" in text:
        return "connection reset"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-stream"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "host name not found"
    return type(exc).__name__


def _users_by_id(includes: Any) -> dict[str, dict]:
    users = includes.get("users") if isinstance(includes, dict) else None
    return {str(user["id"]): user for user in users or [] if isinstance(user, dict) and "id" in user}


def _envelope(post: dict, includes: Any) -> dict:
    return _envelope_from_users(post, _users_by_id(includes))


def _envelope_from_users(post: dict, users: dict[str, dict]) -> dict:
    """The v2 envelope of one Post, its includes narrowed to its author."""
    author = users.get(str(post.get("author_id")))
    return {"data": post, "includes": {"users": [author] if author is not None else []}}
