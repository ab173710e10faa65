"""How many console passwords may be tried: per client address and over all clients, across sessions.

One limiter serves the whole server (pages/_gate.py keeps it in st.cache_resource): a new browser tab or
websocket session does not start a fresh count. An attempt is counted before the password is compared, so
parallel sessions cannot all slip in before the first wrong answer is counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

PER_CLIENT = 5  # wrong passwords from one client address before it is locked out
OVERALL = 20  # wrong passwords from all clients together before everyone is locked out
WINDOW_S = 600.0  # wrong passwords older than this are forgotten
LOCKOUT_S = 30.0
EVERYONE = ""  # the key of the count over all clients


@dataclass
class _Count:
    failures: deque[float] = field(default_factory=deque)  # when each counted attempt began
    locked_until: float = 0.0


class LoginLimiter:
    """Counts password attempts per client address and overall; thread-safe (sessions run in threads)."""

    def __init__(
        self,
        per_client: int = PER_CLIENT,
        overall: int = OVERALL,
        lockout_s: float = LOCKOUT_S,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"client": per_client, "overall": overall}
        self.lockout_s = lockout_s
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = {}

    def locked_s(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: it may)."""
        with self._lock:
            return self._locked_s(client, self._clock())

    def attempt(self, client: str) -> float:
        """Count an attempt from ``client`` as wrong until ``succeeded`` says otherwise.

        Returns 0 when the password may be compared, else the seconds of lockout left (nothing counted).
        The attempt that reaches a limit is still compared; it starts the lockout for the next ones.
        """
        with self._lock:
            now = self._clock()
            locked = self._locked_s(client, now)
            if locked > 0:
                return locked
            for key, limit in ((_key(client), self.limits["client"]), (EVERYONE, self.limits["overall"])):
                count = self._counts.setdefault(key, _Count())
                count.failures.append(now)
                if len(count.failures) >= limit:
                    count.locked_until = now + self.lockout_s
                    count.failures.clear()
            return 0.0

    def succeeded(self, client: str) -> None:
        """The password was right: forget this client's wrong ones and lift its own lockout."""
        with self._lock:
            self._counts.pop(_key(client), None)
            overall = self._counts.get(EVERYONE)
            if overall is not None and overall.failures:
                overall.failures.pop()

    def _locked_s(self, client: str, now: float) -> float:
        remaining = 0.0
        for key in (_key(client), EVERYONE):
            count = self._counts.get(key)
            if count is None:
                continue
            while count.failures and count.failures[0] < now - self.window_s:
                count.failures.popleft()
            remaining = max(remaining, count.locked_until - now)
        return remaining


def _key(client: str) -> str:
    return f"client {client}"  # never EVERYONE, whatever the address
