"""A stand-in for the X API v2 on 127.0.0.1: the filtered stream, its rules, and recent search.

A real HTTP server (ThreadingHTTPServer on a free port, served from a thread) that speaks
X's documented wire format: Bearer authentication with X's 401 body, the rules endpoint's
JSON (``data``, ``meta.sent``, ``meta.summary``), the stream as chunked newline-delimited
JSON with blank-line heartbeats, recent search with ``since_id``, ``next_token`` and
``meta``. Each stream connection follows the next queued StreamScript (send Posts then
drop, answer 503 or 429, stall, cut the connection...); with none queued it sends
heartbeats until the client leaves. Every request is recorded (method, path, params, body,
time) so tests can check the reconnect schedule and the rules sync.

Use it as a context manager::

    with XApiStandIn(token="t") as x:
        x.queue_stream(send_posts([make_post(1)]))
        ... XSourceConfig(base_url=x.base_url, ...)
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

RULES_PATH = "/2/tweets/search/stream/rules"
STREAM_PATH = "/2/tweets/search/stream"
SEARCH_PATH = "/2/tweets/search/recent"
HEARTBEAT = b"\r\n"  # what X sends every 20 s on an idle stream
POST_ID_BASE = 1_790_000_000_000_000_000  # Post ids are 19-digit snowflakes, sent as strings
USER_ID_BASE = 1_200_000_000_000_000_000
RULE_ID_BASE = 1_780_000_000_000_000_000
BASE_TIME = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
LONG_POST_CUT = 280  # a long Post's ``text`` stops here; the rest is in note_tweet

OPERATIONAL_DISCONNECT = {
    "errors": [
        {
            "title": "operational-disconnect",
            "disconnect_type": "UpstreamOperationalDisconnect",
            "detail": "This stream has been disconnected upstream for operational reasons.",
            "type": "https://api.twitter.com/2/problems/operational-disconnect",
        }
    ]
}


def rfc3339(moment: datetime) -> str:
    """X's timestamps: UTC, milliseconds, a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def problem(status: int, detail: str | None = None) -> dict:
    """X's error body for an HTTP status (the shape of its 401, 429 and 503 answers)."""
    phrase = HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": detail or phrase}


def make_user(number: int) -> dict:
    """A v2 user object with the user.fields the client asks for."""
    return {
        "id": str(USER_ID_BASE + number),
        "username": f"cloud_dev{number}",
        "name": f"Cloud Dev {number}",
        "created_at": rfc3339(BASE_TIME - timedelta(days=900 + number)),
        "verified": number % 5 == 0,
        "public_metrics": {
            "followers_count": 120 * number + 7,
            "following_count": 80 + number,
            "tweet_count": 3_000 + number,
            "listed_count": number % 9,
            "like_count": 400 + number,
        },
    }


MENTIONED = {"AzureSupport": str(USER_ID_BASE + 9_001), "msdev": str(USER_ID_BASE + 9_002)}


def _entities(text: str) -> dict[str, list[dict]]:
    entities: dict[str, list[dict]] = {}
    hashtags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in re.finditer(r"#(\w+)", text)]
    mentions = [
        {"start": m.start(), "end": m.end(), "username": m.group(1), "id": MENTIONED.get(m.group(1), "1")}
        for m in re.finditer(r"@(\w+)", text)
    ]
    if hashtags:
        entities["hashtags"] = hashtags
    if mentions:
        entities["mentions"] = mentions
    return entities


def make_post(number: int, *, author: int | None = None, text: str | None = None, reply_to: int | None = None) -> dict:
    """The v2 envelope of Post ``number``: ``data`` with the requested fields, the author in includes.

    Ids grow with ``number`` (as X's do with time); entities are computed from the text. A text over
    280 characters makes a long Post: ``text`` and ``entities`` stop at 280 characters and
    ``note_tweet`` holds the whole text and its entities (X's Tweet schema: note_tweet, "The
    full-content of the Tweet, including text beyond 280 characters"); it is sent only when
    ``tweet.fields`` asks for it, as every non-default field.
    """
    author_number = author if author is not None else number % 3 + 1
    user = make_user(author_number)
    text = text or f"Post {number}: deploying to #Azure with #Kubernetes, thanks @AzureSupport"
    post_id = str(POST_ID_BASE + number)
    shown = text[:LONG_POST_CUT]
    data: dict[str, Any] = {
        "id": post_id,
        "text": shown,
        "created_at": rfc3339(BASE_TIME + timedelta(seconds=number, milliseconds=number % 1000)),
        "lang": "en",
        "author_id": user["id"],
        "conversation_id": post_id,
        "edit_history_tweet_ids": [post_id],
        "public_metrics": {
            "retweet_count": number % 4,
            "reply_count": number % 3,
            "like_count": number % 11,
            "quote_count": 0,
            "bookmark_count": number % 2,
            "impression_count": 50 + number,
        },
        "entities": _entities(shown),
    }
    if len(text) > LONG_POST_CUT:
        data["note_tweet"] = {"text": text, "entities": _entities(text)}
    if reply_to is not None:
        data["referenced_tweets"] = [{"type": "replied_to", "id": str(POST_ID_BASE + reply_to)}]
        data["conversation_id"] = str(POST_ID_BASE + reply_to)
    return {"data": data, "includes": {"users": [user]}}


StreamEvent = dict | bytes | float  # a JSON line, raw bytes (HEARTBEAT), or a pause in seconds
StreamEnd = Literal["drop", "cut", "stall", "heartbeats"]


@dataclass
class StreamScript:
    """What the stand-in does with one connection to the filtered stream.

    A ``status`` other than 200 answers with that status and ``body`` (X's problem JSON by
    default). Otherwise ``events`` are sent in order, then the connection ends by ``end``:
    "drop" closes the stream cleanly (the last chunk), "cut" closes the socket mid-stream,
    "stall" sends nothing more for ``stall_s`` seconds, "heartbeats" sends a heartbeat
    every ``heartbeat_s`` until the client leaves or the stand-in stops.
    """

    status: int = 200
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[StreamEvent] = field(default_factory=list)
    end: StreamEnd = "drop"
    stall_s: float = 5.0


def send_posts(posts: list[dict], end: StreamEnd = "drop", *, heartbeats: bool = False) -> StreamScript:
    """Send ``posts`` (a heartbeat before each when ``heartbeats``), then end as said."""
    events: list[StreamEvent] = []
    for post in posts:
        if heartbeats:
            events.append(HEARTBEAT)
        events.append(post)
    return StreamScript(events=events, end=end)


def http_error(status: int, headers: dict[str, str] | None = None, body: dict | None = None) -> StreamScript:
    return StreamScript(status=status, headers=headers or {}, body=body)


def stall(seconds: float) -> StreamScript:
    """Accept the connection, then send nothing (no heartbeat either) for ``seconds``."""
    return StreamScript(end="stall", stall_s=seconds)


@dataclass(frozen=True)
class SearchAnswer:
    """A scripted answer of recent search, used instead of the real one (an error, say)."""

    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any  # the parsed JSON body, if any
    authorization: str | None
    at: float  # time.monotonic() when it arrived


class XApiStandIn:
    """The stand-in server. ``rules`` and ``search_posts`` are its state; tests may read them."""

    def __init__(self, token: str = "standin-bearer-token", *, heartbeat_s: float = 0.2) -> None:
        self.token = token
        self.heartbeat_s = heartbeat_s
        self.search_page_size: int | None = None  # None: the client's max_results
        self.rules: dict[str, dict] = {}
        self.search_posts: list[dict] = []
        self.requests: list[RecordedRequest] = []
        self._stream_scripts: deque[StreamScript] = deque()
        self._search_answers: deque[SearchAnswer] = deque()
        self._next_rule_id = RULE_ID_BASE
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle

    def start(self) -> XApiStandIn:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        # A short poll interval: stop() waits for serve_forever to notice the shutdown.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="x-api-standin", daemon=True
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()  # ends streaming handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> XApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting

    def add_rule(self, value: str, tag: str | None = None) -> str:
        with self.lock:
            return self._add_rule(value, tag)["id"]

    def queue_stream(self, *scripts: StreamScript) -> None:
        with self.lock:
            self._stream_scripts.extend(scripts)

    def queue_search(self, *answers: SearchAnswer) -> None:
        with self.lock:
            self._search_answers.extend(answers)

    def add_search_posts(self, *posts: dict) -> None:
        with self.lock:
            self.search_posts.extend(posts)

    def requests_to(self, path: str, method: str = "GET") -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path == path and r.method == method]

    # --- internals, called by the handler

    def _add_rule(self, value: str, tag: str | None) -> dict:
        self._next_rule_id += 1
        rule = {"id": str(self._next_rule_id), "value": value}
        if tag is not None:
            rule["tag"] = tag
        self.rules[rule["id"]] = rule
        return rule

    def _next_stream_script(self) -> StreamScript:
        with self.lock:
            return self._stream_scripts.popleft() if self._stream_scripts else StreamScript(end="heartbeats")

    def _next_search_answer(self) -> SearchAnswer | None:
        with self.lock:
            return self._search_answers.popleft() if self._search_answers else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: XApiStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked transfer for the stream, keep-alive for the rest
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        standin = self.server.standin
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        self.tweet_fields = set(params.get("tweet.fields", "").split(","))
        body: Any = None
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        authorization = self.headers.get("Authorization")
        with standin.lock:
            standin.requests.append(RecordedRequest(method, url.path, params, body, authorization, time.monotonic()))
        if authorization != f"Bearer {standin.token}":
            self._send_json(401, problem(401, "Unauthorized"))
        elif url.path == RULES_PATH and method == "GET":
            self._get_rules()
        elif url.path == RULES_PATH and method == "POST":
            self._post_rules(body)
        elif url.path == STREAM_PATH and method == "GET":
            self._stream(standin._next_stream_script())
        elif url.path == SEARCH_PATH and method == "GET":
            self._search(params)
        else:
            self._send_json(404, {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]})

    # --- rules

    def _get_rules(self) -> None:
        standin = self.server.standin
        with standin.lock:
            rules = [dict(rule) for rule in standin.rules.values()]
        answer: dict[str, Any] = {"meta": {"sent": rfc3339(datetime.now(UTC)), "result_count": len(rules)}}
        if rules:
            answer["data"] = rules
        self._send_json(200, answer)

    def _post_rules(self, body: Any) -> None:
        standin = self.server.standin
        sent = rfc3339(datetime.now(UTC))
        if not isinstance(body, dict) or set(body) not in ({"add"}, {"delete"}):
            self._send_json(400, _invalid_request("The request body must hold either `add` or `delete`"))
            return
        errors: list[dict] = []
        with standin.lock:
            if "add" in body:
                created: list[dict] = []
                invalid = 0
                for wanted in body["add"]:
                    value = str(wanted.get("value", ""))
                    existing = next((r for r in standin.rules.values() if r["value"] == value), None)
                    if not value.strip() or value.count("(") != value.count(")"):
                        invalid += 1
                        errors.append(
                            {
                                "value": value,
                                "details": ["Rules must contain a non-empty, balanced expression"],
                                "title": "UnprocessableEntity",
                                "type": "https://api.twitter.com/2/problems/invalid-rules",
                            }
                        )
                    elif existing is not None:
                        errors.append(
                            {
                                "value": value,
                                "id": existing["id"],
                                "title": "DuplicateRule",
                                "type": "https://api.twitter.com/2/problems/duplicate-rules",
                            }
                        )
                    else:
                        created.append(dict(standin._add_rule(value, wanted.get("tag"))))
                total = len(body["add"])
                answer: dict[str, Any] = {
                    "meta": {
                        "sent": sent,
                        "summary": {
                            "created": len(created),
                            "not_created": total - len(created),
                            "valid": total - invalid,
                            "invalid": invalid,
                        },
                    }
                }
                if created:
                    answer["data"] = created
            else:
                ids = [str(rule_id) for rule_id in (body["delete"] or {}).get("ids", [])]
                deleted = [rule_id for rule_id in ids if standin.rules.pop(rule_id, None) is not None]
                for rule_id in ids:
                    if rule_id not in deleted:
                        errors.append({"parameters": {"ids": [rule_id]}, "message": f"Rule {rule_id} does not exist"})
                answer = {
                    "meta": {"sent": sent, "summary": {"deleted": len(deleted), "not_deleted": len(ids) - len(deleted)}}
                }
        if errors:
            answer["errors"] = errors
        self._send_json(200, answer)

    # --- the stream

    def _stream(self, script: StreamScript) -> None:
        standin = self.server.standin
        if script.status != 200:
            self._send_json(script.status, script.body or problem(script.status), script.headers)
            return
        self.close_connection = True  # one stream per connection
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in script.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for event in script.events:
                if isinstance(event, int | float):
                    if standin.closing.wait(event):
                        return
                elif isinstance(event, bytes):
                    self._chunk(event)
                else:
                    message = self._with_matching_rules(self._requested_fields(event))
                    self._chunk(json.dumps(message).encode() + b"\r\n")
            if script.end == "drop":
                self.wfile.write(b"0\r\n\r\n")  # the last chunk: the stream ends cleanly
            elif script.end == "stall":
                standin.closing.wait(script.stall_s)
            elif script.end == "heartbeats":
                while not standin.closing.wait(standin.heartbeat_s):
                    self._chunk(HEARTBEAT)
            # "cut", and a stall that ran out: the socket closes without the last chunk.
        except OSError:
            return  # the client went away

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _requested_fields(self, message: dict) -> dict:
        """``message`` without note_tweet unless the request's tweet.fields names it."""
        data = message.get("data")
        if "note_tweet" in self.tweet_fields or not isinstance(data, dict) or "note_tweet" not in data:
            return message
        return {**message, "data": {key: value for key, value in data.items() if key != "note_tweet"}}

    def _with_matching_rules(self, message: dict) -> dict:
        if "data" not in message or "matching_rules" in message:
            return message
        with self.server.standin.lock:
            rules = [{"id": r["id"], "tag": r.get("tag", "")} for r in self.server.standin.rules.values()]
        return {**message, "matching_rules": rules}

    # --- recent search

    def _search(self, params: dict[str, str]) -> None:
        standin = self.server.standin
        scripted = standin._next_search_answer()
        if scripted is not None:
            self._send_json(scripted.status, scripted.body or problem(scripted.status), scripted.headers)
            return
        if not params.get("query"):
            self._send_json(400, _invalid_request("The `query` query parameter can not be empty"))
            return
        max_results = int(params.get("max_results", "10"))
        if not 10 <= max_results <= 100:
            self._send_json(400, _invalid_request("The `max_results` query parameter value is not between 10 and 100"))
            return
        since = int(params.get("since_id", "0"))
        until: int | None = None
        page_token = params.get("next_token") or params.get("pagination_token")
        if page_token:
            since, until = _decode_page_token(page_token)
        with standin.lock:
            matches = [
                post
                for post in standin.search_posts
                if since < int(post["data"]["id"]) and (until is None or int(post["data"]["id"]) < until)
            ]
            page_size = standin.search_page_size or max_results
        matches.sort(key=lambda post: int(post["data"]["id"]), reverse=True)  # newest first, as X does
        page = matches[:page_size]
        answer: dict[str, Any] = {}
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            users: dict[str, dict] = {}
            for post in page:
                for user in post.get("includes", {}).get("users", []):
                    users.setdefault(user["id"], user)
            answer["data"] = [self._requested_fields(post)["data"] for post in page]
            answer["includes"] = {"users": list(users.values())}
            meta["newest_id"] = page[0]["data"]["id"]
            meta["oldest_id"] = page[-1]["data"]["id"]
        if len(matches) > page_size:
            meta["next_token"] = _page_token(since, int(page[-1]["data"]["id"]))
        answer["meta"] = meta
        self._send_json(200, answer)

    # --- plumbing

    def _send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _invalid_request(message: str) -> dict:
    return {
        "errors": [{"parameters": {}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _page_token(since: int, until: int) -> str:
    """An opaque next_token: the page below ``until`` (exclusive), above ``since``; stable like X's."""
    return base64.b32encode(f"{since}:{until}".encode()).decode().rstrip("=").lower()


def _decode_page_token(token: str) -> tuple[int, int]:
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
    since, until = raw.split(":")
    return int(since), int(until)
