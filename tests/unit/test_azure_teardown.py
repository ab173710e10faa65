"""What the Setup page says goes with a teardown, before the user confirms it (no Azure needed)."""

from __future__ import annotations

from backend.azure.arm import DATABRICKS_WORKSPACE, STORAGE_ACCOUNT
from backend.azure.plan import build_plan
from backend.azure.plan_config import PlanConfig
from backend.azure.teardown import data_going

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def plan(**databricks: str):
    config = {"subscription_id": SUBSCRIPTION, "region": "eastus", "resource_group": "rg", "name_prefix": "ts"}
    return build_plan(PlanConfig.model_validate(config | {"databricks": databricks}))


def test_deleting_the_workspace_says_the_checkpoint_archive_and_tables_go_with_it() -> None:
    going = data_going(plan(), [(STORAGE_ACCOUNT, "st"), (DATABRICKS_WORKSPACE, "ts-databricks")])

    assert going is not None
    assert "managed resource group" in going
    assert "checkpoint and archive (volume ts.streaming_state)" in going
    assert "the Delta tables ts_* when they are in the workspace's default catalog" in going


def test_a_schema_in_the_plans_own_catalog_is_said_to_stay() -> None:
    going = data_going(plan(catalog="main", schema_name="tweets"), [(DATABRICKS_WORKSPACE, "ts-databricks")])

    assert going is not None
    assert "The schema main.tweets, with the consumer's checkpoint and archive volume streaming_state, stays" in going


def test_nothing_is_said_when_the_workspace_is_not_deleted() -> None:
    assert data_going(plan(), [(STORAGE_ACCOUNT, "st")]) is None
