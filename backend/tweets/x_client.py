"""The X API v2 over HTTP: the source's settings and errors, one REST call, the stream rules' sync.

Follows X's documented rules (docs.x.com): the stream's rules are synced once before connecting
(``sync_rules``); an HTTP error becomes an ``XApiError`` saying whether trying again may help
(``backend.tweets.x_reconnect``). ``backend.tweets.x_source`` reads the Posts with these.

The bearer token never appears in a message, an exception or a log line: it only goes into
the Authorization header, and every text built here is scrubbed of it for good measure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import requests

from backend.tweets.contract import with_full_text
from backend.tweets.x_reconnect import is_retryable

RULES_PATH = "/2/tweets/search/stream/rules"
STREAM_PATH = "/2/tweets/search/stream"
SEARCH_PATH = "/2/tweets/search/recent"
RULE_TAG = "tweetstream"  # the tag of the rule this console adds
# The fields the consumer reads; expansions=author_id puts the author in includes.users; note_tweet
# is a long Post's whole text (``text`` stops near 280 characters).
FIELD_PARAMS = {
    "tweet.fields": "created_at,lang,author_id,entities,referenced_tweets,conversation_id,public_metrics,note_tweet",
    "expansions": "author_id",
    "user.fields": "username,name,created_at,verified,public_metrics",
}
SEARCH_PAGE_SIZE = 100  # recent search's maximum max_results
CONNECT_TIMEOUT_S = 10.0
REST_READ_TIMEOUT_S = 30.0  # rules and recent search answer in well under this
USER_AGENT = "tweetstream-console/1.0"  # X asks for a client version in the user agent
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: what a header value may carry

Mode = Literal["stream", "search"]


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


def sync_rules(session: requests.Session, config: XSourceConfig, token: str) -> RuleSync:
    """Make the stream's rules the one rule ``config.query`` (tagged RULE_TAG).

    Rules with another value are deleted and the query is added unless present. With no
    query the rules are kept as they are. Raises XApiError (see its ``retryable``).
    """
    token = clean_token(token)
    url = config.base_url.rstrip("/") + RULES_PATH
    body = request_json(session, "GET", url, token, "the stream rules", mode=config.mode)
    rules = [rule for rule in body.get("data") or [] if isinstance(rule, dict)]
    if config.query is None:
        return RuleSync(added=[], deleted=[], kept=[str(rule.get("value")) for rule in rules])

    def post(json_body: dict) -> dict:
        return request_json(session, "POST", url, token, "the stream rules", mode=config.mode, json_body=json_body)

    stale = [rule for rule in rules if rule.get("value") != config.query]
    present = len(stale) < len(rules)
    if stale:
        answer = post({"delete": {"ids": [str(rule.get("id")) for rule in stale]}})
        summary = (answer.get("meta") or {}).get("summary") or {}
        if summary.get("not_deleted"):
            raise XApiError(scrub(f"X did not delete stale stream rules: {problem_detail(answer)}", token))
    if not present:
        answer = post({"add": [{"value": config.query, "tag": RULE_TAG}]})
        summary = (answer.get("meta") or {}).get("summary") or {}
        duplicate = any(
            isinstance(error, dict) and error.get("title") == "DuplicateRule" for error in answer.get("errors") or []
        )
        if (summary.get("invalid") or summary.get("not_created")) and not duplicate:
            raise XApiError(
                scrub(f"X rejected the stream rule {config.query!r}: {problem_detail(answer)}", token),
                status=400,
            )
    return RuleSync(
        added=[] if present else [config.query],
        deleted=[str(rule.get("value")) for rule in stale],
        kept=[config.query] if present else [],
    )


def request_json(
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
            headers=auth_headers(token),
            timeout=(CONNECT_TIMEOUT_S, REST_READ_TIMEOUT_S),
        )
    except requests.RequestException as exc:
        detail = describe_network_error(exc, REST_READ_TIMEOUT_S)
        raise XApiError(scrub(f"network error on {what} ({detail})", token), retryable=True) from None
    if not response.ok:
        raise http_error(response.status_code, dict(response.headers), response.text, what=what, mode=mode, token=token)
    body = parse_json(response.content)
    if body is None:
        raise XApiError(f"{what}: X answered HTTP {response.status_code} with a body that is not JSON", retryable=True)
    return body


def http_error(status: int, headers: dict[str, str], text: str, *, what: str, mode: Mode, token: str) -> XApiError:
    """The XApiError for an HTTP error ``status`` from ``what``."""
    body = parse_json(text.encode()) or {}
    detail = problem_detail(body) or text.strip()[:200]
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
    error = XApiError(scrub(message, token), status=status, retryable=is_retryable(status))
    reset = {key.lower(): value for key, value in headers.items()}.get("x-rate-limit-reset")
    if reset is not None and reset.strip().isdigit():
        error.rate_limit_reset = float(reset)
    return error


def clean_token(token: str) -> str:
    token = token.strip()
    if not token:
        raise XApiError("no X bearer token: set X_BEARER_TOKEN")
    if not _TOKEN_RE.fullmatch(token):
        # Checked here: requests would otherwise quote the bad header value in its exception.
        raise XApiError("X_BEARER_TOKEN holds spaces or characters a bearer token cannot have")
    return token


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def parse_json(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def problem_detail(body: dict) -> str:
    """A short text of X's problem JSON: its ``detail``/``title``, or those of its ``errors``."""
    parts: list[str] = []
    for problem in [body, *(body.get("errors") or [])]:
        if not isinstance(problem, dict):
            continue
        text = problem.get("detail") or problem.get("message") or problem.get("title")
        if text and str(text) not in parts:
            parts.append(str(text))
    return "; ".join(parts)[:300]


def describe_network_error(exc: BaseException, read_timeout_s: float) -> str:
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


def users_by_id(includes: Any) -> dict[str, dict]:
    users = includes.get("users") if isinstance(includes, dict) else None
    return {str(user["id"]): user for user in users or [] if isinstance(user, dict) and "id" in user}


def envelope(post: dict, includes: Any) -> dict:
    return envelope_from_users(post, users_by_id(includes))


def envelope_from_users(post: dict, users: dict[str, dict]) -> dict:
    """The v2 envelope of one Post (a long one with its whole text), its includes narrowed to its author."""
    author = users.get(str(post.get("author_id")))
    return {"data": with_full_text(post), "includes": {"users": [author] if author is not None else []}}
