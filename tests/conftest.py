"""Shared by every test: no page's background sampler outlives the test that started it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend import monitor


@pytest.fixture(autouse=True)
def _close_monitors() -> Iterator[None]:
    yield
    monitor.close_all()
