"""When to try X again: the reconnection schedule X documents, and which HTTP statuses are worth retrying.

Pure: no network, no clock; ``backend.tweets.x_source`` waits the delays these return.
"""

from __future__ import annotations


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
