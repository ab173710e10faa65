"""Helpers shared by the tests."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_name(prefix: str) -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Real tweet payloads kept beside the project (../shared); absent on a user's own clone.
SHARED_TWEETS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tweets"


def shared_tweet_lines(name: str) -> list[str]:
    """The non-empty lines of one shared payload file."""
    return [line for line in (SHARED_TWEETS / name).read_text().splitlines() if line.strip()]
