"""Shared by every test: no page's background sampler outlives the test that started it; and a
fixture for tests that must read no setting from outside."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from backend.console import monitor


@pytest.fixture(autouse=True)
def _close_monitors() -> Iterator[None]:
    yield
    monitor.close_all()


@pytest.fixture
def no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Neither the developer's environment nor their secrets.toml may change the test."""
    for name in list(os.environ):
        if name.startswith("TWEETSTREAM_") or name == "X_BEARER_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "absent.toml"))
