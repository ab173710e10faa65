"""The reconnection schedule X documents, as ReconnectPolicy computes it."""

from __future__ import annotations

import itertools

import pytest

from backend.tweets.x_client import XApiError, XSourceConfig
from backend.tweets.x_reconnect import ReconnectPolicy, is_retryable


def test_a_dropped_connection_is_retried_at_once() -> None:
    policy = ReconnectPolicy()
    assert [policy.after_drop() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_network_errors_back_off_linearly_by_250_ms_up_to_16_s() -> None:
    policy = ReconnectPolicy()
    delays = [policy.after_network_error() for _ in range(70)]
    assert delays[:5] == [0.25, 0.5, 0.75, 1.0, 1.25]
    assert delays[63] == 16.0  # the 64th failure reaches the cap...
    assert delays[64:] == [16.0] * 6  # ...and it holds
    assert all(b - a == 0.25 for a, b in itertools.pairwise(delays[:64]))


def test_http_errors_back_off_exponentially_from_5_s_up_to_320_s() -> None:
    policy = ReconnectPolicy()
    assert [policy.after_http_error(503) for _ in range(9)] == [5, 10, 20, 40, 80, 160, 320, 320, 320]


def test_rate_limits_back_off_exponentially_from_60_s() -> None:
    policy = ReconnectPolicy()
    assert [policy.after_http_error(429) for _ in range(7)] == [60, 120, 240, 480, 900, 900, 900]


def test_the_old_420_counts_as_a_rate_limit() -> None:
    assert ReconnectPolicy().after_http_error(420) == 60


def test_each_kind_of_failure_keeps_its_own_count() -> None:
    policy = ReconnectPolicy()
    assert policy.after_http_error(500) == 5
    assert policy.after_network_error() == 0.25
    assert policy.after_http_error(429) == 60
    assert policy.after_http_error(502) == 10
    assert policy.after_network_error() == 0.5
    assert policy.after_http_error(429) == 120


def test_a_successful_connection_resets_every_schedule() -> None:
    policy = ReconnectPolicy()
    for _ in range(5):
        policy.after_network_error()
        policy.after_http_error(503)
        policy.after_http_error(429)
    policy.reset()
    assert policy.after_network_error() == 0.25
    assert policy.after_http_error(503) == 5
    assert policy.after_http_error(429) == 60


def test_a_long_outage_stays_at_the_caps() -> None:
    policy = ReconnectPolicy()
    for _ in range(10_000):
        http = policy.after_http_error(503)
        rate = policy.after_http_error(429)
    assert (http, rate) == (320, 900)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(500, True), (503, True), (504, True), (429, True), (420, True), (408, True)],
        *[(400, False), (401, False), (403, False), (404, False), (409, False)],
    ],
)
def test_which_statuses_are_worth_retrying(status: int, retryable: bool) -> None:
    assert is_retryable(status) is retryable


def test_search_mode_needs_a_query() -> None:
    with pytest.raises(XApiError, match="needs a query"):
        XSourceConfig(base_url="http://127.0.0.1:1", query=None, mode="search")


def test_the_stream_may_keep_the_existing_rules() -> None:
    assert XSourceConfig(base_url="http://127.0.0.1:1", query=None).mode == "stream"


def test_an_empty_query_is_refused() -> None:
    with pytest.raises(XApiError, match="empty"):
        XSourceConfig(base_url="http://127.0.0.1:1", query="  ")
