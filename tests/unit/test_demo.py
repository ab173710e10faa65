"""Start demo pipeline's plan: what it runs, and its refusals before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.console import demo
from backend.console.demo import DemoRefused
from backend.settings import Settings


def test_the_demo_runs_synthetic_tweets_at_a_gentle_rate_and_the_spark_job_with_its_defaults(tmp_path: Path) -> None:
    plan = demo.plan(Settings(state_dir=tmp_path), {"producer": None, "consumer": None})
    assert plan.topic == "tweets"
    assert plan.producer == ["--topic=tweets", "--create-topic", "--source=synthetic", "--rate=20"]
    assert "--trigger=2 seconds" in plan.consumer
    # Already running with the same options: accepted (Start then finds them running).
    assert demo.plan(Settings(state_dir=tmp_path), {"producer": tuple(plan.producer), "consumer": None}) == plan


def test_refusals_say_why_and_what_to_do(tmp_path: Path) -> None:
    idle = {"producer": None, "consumer": None}
    with pytest.raises(DemoRefused, match="target is Azure"):
        demo.plan(Settings(state_dir=tmp_path, pipeline_target="azure"), idle)
    with pytest.raises(DemoRefused, match=r"another cluster \(broker\.example:9092\).*This machine's broker"):
        demo.plan(Settings(state_dir=tmp_path, bootstrap_servers="broker.example:9092"), idle)
    with pytest.raises(DemoRefused, match=r"The producer already runs with other options \(--rate=500\)"):
        demo.plan(Settings(state_dir=tmp_path), {"producer": ("--rate=500",), "consumer": None})
    with pytest.raises(DemoRefused, match="Spark job already runs"):
        demo.plan(Settings(state_dir=tmp_path), {"producer": None, "consumer": ("--trigger=1 minute",)})
