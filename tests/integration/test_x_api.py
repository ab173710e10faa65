"""backend.tweets.x_source against the X API stand-in (tests/standins/x_api.py): no Kafka, no outside network.

Waits are recorded by an injected ``sleep`` (so a 60 s backoff takes no time) except where a
test checks real timing; a watchdog sets ``stop`` so that a broken client fails a test
instead of hanging it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from backend.tweets.x_client import FIELD_PARAMS, RULE_TAG, RuleSync, XApiError, XSourceConfig, sync_rules
from backend.tweets.x_source import iter_tweets
from tests.standins.x_api import (
    HEARTBEAT,
    OPERATIONAL_DISCONNECT,
    POST_ID_BASE,
    RULES_PATH,
    SEARCH_PATH,
    STREAM_PATH,
    SearchAnswer,
    StreamScript,
    XApiStandIn,
    http_error,
    make_post,
    make_user,
    send_posts,
    stall,
)
from tests.support import free_port

TOKEN = "standin-token-7f3a9c2e1b"
QUERY = "#Azure lang:en -is:retweet"


@pytest.fixture
def x() -> Iterator[XApiStandIn]:
    with XApiStandIn(token=TOKEN) as standin:
        yield standin


@dataclass
class Recorder:
    """Collects what iter_tweets reports and how long it asks to wait."""

    stop: threading.Event = field(default_factory=threading.Event)
    reports: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[int], None] | None = None  # called with the number of sleeps so far

    def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def collect(
    config: XSourceConfig,
    count: int,
    recorder: Recorder,
    *,
    token: str = TOKEN,
    real_waits: bool = False,
    deadline_s: float = 5.0,
) -> list[dict]:
    """The Posts iter_tweets yields until it has ``count`` (then ``stop`` is set) or the deadline."""
    watchdog = threading.Timer(deadline_s, recorder.stop.set)
    watchdog.start()
    posts: list[dict] = []
    try:
        for post in iter_tweets(
            config,
            token,
            recorder.stop,
            report=recorder.reports.append,
            sleep=None if real_waits else recorder.sleep,
        ):
            posts.append(post)
            if len(posts) >= count:
                recorder.stop.set()  # the iterator must end at its next step
    finally:
        watchdog.cancel()
    return posts


def stream_config(x: XApiStandIn, **overrides: object) -> XSourceConfig:
    return XSourceConfig(base_url=x.base_url, query=QUERY, **overrides)  # type: ignore[arg-type]


def ids(posts: list[dict]) -> list[int]:
    return [int(post["data"]["id"]) - POST_ID_BASE for post in posts]


# --- rules -------------------------------------------------------------------------------


def test_rules_sync_deletes_stale_rules_and_adds_the_query(x: XApiStandIn) -> None:
    x.add_rule("#Azure lang:en", tag="older")
    x.add_rule("cats has:media")
    with requests.Session() as session:
        result = sync_rules(session, stream_config(x), TOKEN)
    assert result == RuleSync(added=[QUERY], deleted=["#Azure lang:en", "cats has:media"], kept=[])
    assert [(rule["value"], rule["tag"]) for rule in x.rules.values()] == [(QUERY, RULE_TAG)]
    posts = [request.body for request in x.requests_to(RULES_PATH, "POST")]
    assert [list(body) for body in posts] == [["delete"], ["add"]]
    assert len(posts[0]["delete"]["ids"]) == 2
    assert posts[1] == {"add": [{"value": QUERY, "tag": RULE_TAG}]}


def test_rules_sync_keeps_an_identical_rule(x: XApiStandIn) -> None:
    kept_id = x.add_rule(QUERY, tag=RULE_TAG)
    x.add_rule("stale")
    with requests.Session() as session:
        result = sync_rules(session, stream_config(x), TOKEN)
    assert result == RuleSync(added=[], deleted=["stale"], kept=[QUERY])
    assert list(x.rules) == [kept_id]
    assert [request.body for request in x.requests_to(RULES_PATH, "POST")] == [
        {"delete": {"ids": [str(int(kept_id) + 1)]}}
    ]


def test_without_a_query_the_rules_are_left_alone(x: XApiStandIn) -> None:
    x.add_rule("from:AzureSupport")
    with requests.Session() as session:
        result = sync_rules(session, XSourceConfig(base_url=x.base_url, query=None), TOKEN)
    assert result == RuleSync(added=[], deleted=[], kept=["from:AzureSupport"])
    assert x.requests_to(RULES_PATH, "POST") == []


def test_a_rule_x_rejects_is_fatal(x: XApiStandIn) -> None:
    with requests.Session() as session, pytest.raises(XApiError, match=r"rejected the stream rule '\(#Azure'"):
        sync_rules(session, XSourceConfig(base_url=x.base_url, query="(#Azure"), TOKEN)


# --- the filtered stream -----------------------------------------------------------------


def test_posts_arrive_in_order_with_only_their_author(x: XApiStandIn) -> None:
    with_others = make_post(1)
    with_others["includes"]["users"] = [make_user(7), *with_others["includes"]["users"], make_user(8)]
    without_includes = {"data": make_post(2)["data"]}
    x.queue_stream(send_posts([with_others, without_includes, make_post(3)], end="heartbeats"))
    recorder = Recorder()

    posts = collect(stream_config(x), 3, recorder)

    assert ids(posts) == [1, 2, 3]
    assert posts[0] == {"data": with_others["data"], "includes": {"users": [make_user(1 % 3 + 1)]}}
    assert posts[1]["includes"] == {"users": []}
    assert posts[2]["includes"]["users"][0]["id"] == posts[2]["data"]["author_id"]
    assert set(posts[0]) == {"data", "includes"}  # matching_rules is not passed on
    (request,) = x.requests_to(STREAM_PATH)
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.params == FIELD_PARAMS
    assert recorder.reports[:2] == ["rules synced: added 1, deleted 0", "connected to the filtered stream"]
    assert recorder.sleeps == []


def test_a_long_post_arrives_whole_from_the_stream_and_from_search(x: XApiStandIn) -> None:
    text = "Long post on #Azure: " + "lorem ipsum " * 30 + "ends with #Kafka and @msdev"
    long_post = make_post(1, text=text)
    x.queue_stream(send_posts([long_post], end="heartbeats"))
    x.add_search_posts(make_post(2, text=text))

    streamed = collect(stream_config(x), 1, Recorder())
    searched = collect(XSourceConfig(base_url=x.base_url, query=QUERY, mode="search"), 1, Recorder())

    assert len(long_post["data"]["text"]) == 280  # what X's text field holds
    for posts in (streamed, searched):
        assert posts[0]["data"]["text"] == text
        assert [h["tag"] for h in posts[0]["data"]["entities"]["hashtags"]] == ["Azure", "Kafka"]
        assert [m["username"] for m in posts[0]["data"]["entities"]["mentions"]] == ["msdev"]
    asked = x.requests_to(STREAM_PATH) + x.requests_to(SEARCH_PATH)
    assert len(asked) == 2 and all("note_tweet" in r.params["tweet.fields"].split(",") for r in asked)


def test_heartbeats_are_skipped(x: XApiStandIn) -> None:
    script = send_posts([make_post(1), make_post(2)], end="heartbeats", heartbeats=True)
    script.events[1:1] = [HEARTBEAT, HEARTBEAT, 0.05, HEARTBEAT]
    x.queue_stream(script)
    recorder = Recorder()
    assert ids(collect(stream_config(x), 2, recorder)) == [1, 2]
    assert not [line for line in recorder.reports if "not JSON" in line]


def test_a_dropped_stream_is_reconnected_at_once(x: XApiStandIn) -> None:
    x.queue_stream(send_posts([make_post(1), make_post(2)]), send_posts([make_post(3), make_post(4)], end="heartbeats"))
    recorder = Recorder()

    posts = collect(stream_config(x), 4, recorder, real_waits=True)

    assert ids(posts) == [1, 2, 3, 4]
    first, second = x.requests_to(STREAM_PATH)
    assert second.at - first.at < 1.0
    assert "stream dropped, reconnecting now" in recorder.reports
    assert recorder.reports.count("connected to the filtered stream") == 2


def test_http_errors_back_off_5_then_10_s_and_no_post_is_lost_or_repeated(x: XApiStandIn) -> None:
    x.queue_stream(
        send_posts([make_post(1), make_post(2), make_post(3)]),
        http_error(503),
        http_error(503),
        send_posts([make_post(4), make_post(5), make_post(6)], end="heartbeats"),
    )
    recorder = Recorder()

    posts = collect(stream_config(x), 6, recorder)

    assert ids(posts) == [1, 2, 3, 4, 5, 6]
    assert recorder.sleeps == [0.0, 5.0, 10.0]
    assert len(x.requests_to(STREAM_PATH)) == 4
    assert "HTTP 503 from the filtered stream, reconnecting in 5 s" in recorder.reports
    assert "HTTP 503 from the filtered stream, reconnecting in 10 s" in recorder.reports


def test_a_successful_connection_restarts_the_backoff(x: XApiStandIn) -> None:
    x.queue_stream(
        http_error(503),
        send_posts([make_post(1)]),
        http_error(503),
        send_posts([make_post(2)], end="heartbeats"),
    )
    recorder = Recorder()
    assert ids(collect(stream_config(x), 2, recorder)) == [1, 2]
    assert recorder.sleeps == [5.0, 0.0, 5.0]


def test_a_rate_limit_backs_off_60_s(x: XApiStandIn) -> None:
    x.queue_stream(http_error(429), send_posts([make_post(1)], end="heartbeats"))
    recorder = Recorder()
    assert ids(collect(stream_config(x), 1, recorder)) == [1]
    assert recorder.sleeps == [60.0]


def test_a_stall_past_the_read_timeout_is_a_network_error(x: XApiStandIn) -> None:
    x.queue_stream(stall(5.0), send_posts([make_post(1)], end="heartbeats"))
    recorder = Recorder()

    posts = collect(stream_config(x, read_timeout_s=0.5), 1, recorder)

    assert ids(posts) == [1]
    assert recorder.sleeps == [0.25]
    first, second = x.requests_to(STREAM_PATH)
    assert 0.5 <= second.at - first.at < 2.0
    assert any("no data or heartbeat for 0.5 s" in line for line in recorder.reports)


def test_a_connection_cut_mid_stream_is_a_network_error(x: XApiStandIn) -> None:
    x.queue_stream(send_posts([make_post(1)], end="cut"), send_posts([make_post(2)], end="heartbeats"))
    recorder = Recorder()
    assert ids(collect(stream_config(x), 2, recorder)) == [1, 2]
    assert recorder.sleeps == [0.25]


def test_an_operational_disconnect_is_a_drop(x: XApiStandIn) -> None:
    x.queue_stream(
        StreamScript(events=[make_post(1), OPERATIONAL_DISCONNECT], end="drop"),
        send_posts([make_post(2)], end="heartbeats"),
    )
    recorder = Recorder()
    assert ids(collect(stream_config(x), 2, recorder)) == [1, 2]
    assert recorder.sleeps == [0.0]
    assert any("disconnected upstream for operational reasons" in line for line in recorder.reports)


def test_network_errors_back_off_linearly_while_x_cannot_be_reached() -> None:
    config = XSourceConfig(base_url=f"http://127.0.0.1:{free_port()}", query=QUERY)
    recorder = Recorder()
    recorder.on_sleep = lambda n: recorder.stop.set() if n == 3 else None
    assert collect(config, 1, recorder) == []
    assert recorder.sleeps == [0.25, 0.5, 0.75]
    assert "connection refused" in recorder.reports[0]


def test_a_wrong_token_is_fatal_and_never_shown(x: XApiStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-token-5d1e"
    recorder = Recorder()
    with pytest.raises(XApiError) as caught:
        collect(stream_config(x), 1, recorder, token=wrong)
    assert str(caught.value) == "X rejected the bearer token (HTTP 401): check X_BEARER_TOKEN"
    assert caught.value.status == 401
    assert all(wrong not in line for line in [str(caught.value), repr(caught.value), *recorder.reports])
    assert wrong not in caplog.text
    assert x.requests[0].authorization == f"Bearer {wrong}"  # it was sent, where it belongs
    assert len(x.requests) == 1  # no retry


def test_a_forbidden_stream_suggests_recent_search(x: XApiStandIn) -> None:
    x.queue_stream(http_error(403))
    with pytest.raises(XApiError, match="--x-mode search") as caught:
        collect(stream_config(x), 1, Recorder())
    assert TOKEN not in str(caught.value)


# --- recent search -----------------------------------------------------------------------


def test_search_polls_with_since_id_and_yields_each_post_once(x: XApiStandIn) -> None:
    x.search_page_size = 2  # so that a poll needs several pages
    x.add_search_posts(*(make_post(n) for n in (1, 2, 3)))
    recorder = Recorder()

    def between_polls(count: int) -> None:
        if count == 1:
            x.add_search_posts(*(make_post(n) for n in (6, 4, 8, 5, 7)))
        if count == 3:
            recorder.stop.set()

    recorder.on_sleep = between_polls

    posts = collect(XSourceConfig(base_url=x.base_url, query=QUERY, mode="search"), 100, recorder)

    # The first poll takes the newest page only; later ones everything newer, oldest first.
    assert ids(posts) == [2, 3, 4, 5, 6, 7, 8]
    assert recorder.sleeps == [15.0, 15.0, 15.0]
    for number, post in zip(ids(posts), posts, strict=True):
        assert post["includes"] == {"users": [make_user(number % 3 + 1)]}  # the page held three authors
    searches = x.requests_to(SEARCH_PATH)
    assert [r.params.get("since_id") for r in searches] == [None] + [str(POST_ID_BASE + 3)] * 3 + [
        str(POST_ID_BASE + 8)
    ]
    assert [r.params.get("next_token") is not None for r in searches] == [False, False, True, True, False]
    assert all(r.params["query"] == QUERY and r.params["max_results"] == "100" for r in searches)
    assert all(r.params[name] == value for r in searches for name, value in FIELD_PARAMS.items())


def test_search_honours_the_rate_limit_reset_then_backs_off(x: XApiStandIn) -> None:
    reset = int(time.time()) + 2
    x.queue_search(
        SearchAnswer(status=429, headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"}),
        SearchAnswer(status=429),
        SearchAnswer(status=503),
    )
    x.add_search_posts(make_post(1))
    recorder = Recorder()

    posts = collect(XSourceConfig(base_url=x.base_url, query=QUERY, mode="search"), 1, recorder)

    assert ids(posts) == [1]
    waited_for_reset, *rest = recorder.sleeps
    assert 2.0 < waited_for_reset <= 4.0
    assert rest == [60.0, 5.0]
    assert "HTTP 503 from recent search, retrying in 5 s" in recorder.reports


# --- stopping ----------------------------------------------------------------------------


@pytest.mark.parametrize("situation", ["stream sending heartbeats", "stream stalled", "search between polls"])
def test_setting_stop_ends_the_iterator_promptly(x: XApiStandIn, situation: str) -> None:
    if situation == "stream stalled":
        x.queue_stream(stall(10.0))
    mode = "search" if situation.startswith("search") else "stream"
    config = XSourceConfig(base_url=x.base_url, query=QUERY, mode=mode)  # 20 s read timeout, 15 s polls
    stop = threading.Event()
    done = threading.Event()

    def consume() -> None:
        for _ in iter_tweets(config, TOKEN, stop):
            pass
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.5)  # connected (or polled) and waiting
    assert not done.is_set()
    assert x.requests_to(SEARCH_PATH if mode == "search" else STREAM_PATH)
    stopped_at = time.monotonic()
    stop.set()
    assert done.wait(2.0), "iter_tweets did not end after stop was set"
    assert time.monotonic() - stopped_at < 1.0
