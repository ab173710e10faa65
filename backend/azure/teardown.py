"""The Setup page's teardown: what carries the plan's tag, deleting it after the user confirmed the names,
and forgetting the deployment record (and the Azure pipeline target) once nothing is left."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from backend.azure import provision
from backend.azure.arm import DATABRICKS_WORKSPACE, StepResult
from backend.azure.credentials import client_options, credential_from, effective_plan, subscription
from backend.azure.deployment import forget_deployment, load_deployment
from backend.azure.plan import Plan
from backend.azure.wizard_guard import BuildRunning, build_lock, build_running, log_unless_expected, unexpected
from backend.settings import Settings
from backend.settings_file import save_pipeline_target

log = logging.getLogger(__name__)


def find_tagged(plan: Plan, settings: Settings) -> tuple[list[tuple[str, str]], StepResult | None]:
    """What carries the plan's tag, or the failure that prevented reading it."""
    try:
        plan = effective_plan(plan, settings)
        found = provision.find_tagged(
            plan, credential_from(settings), subscription(settings, plan), client_options=client_options(settings)
        )
        if not found:
            _forget_record(plan, settings)
    except Exception as exc:  # shown on the page with what to do, never a traceback
        log_unless_expected(exc)
        return [], unexpected(plan, exc)
    return found, None


def data_going(plan: Plan, found: Sequence[tuple[str, str]]) -> str | None:
    """What data the listed deletes take with them, for the page to say before the user confirms."""
    if not any(kind == DATABRICKS_WORKSPACE for kind, _ in found):
        return None
    names = plan.names
    tables = f"the Delta tables {names.table_prefix}* when they are in the workspace's default catalog"
    going = "Deleting the workspace deletes its managed resource group too, with the workspace catalog's storage"
    if names.uc_catalog:  # the plan's own catalog: not in the workspace's managed storage
        return (
            f"{going} ({tables}). The schema {names.uc_catalog}.{names.uc_schema}, with the consumer's "
            f"checkpoint and archive volume {names.uc_volume}, stays in the metastore."
        )
    return f"{going}: the consumer's checkpoint and archive (volume {names.uc_schema}.{names.uc_volume}) and {tables}."


def teardown(
    plan: Plan,
    settings: Settings,
    confirm: Sequence[str],
    progress: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Delete what carries the tag after ``confirm`` named exactly it; a refusal or failure comes back as a result.
    Never while a build runs. When all of it went, the deployment record goes too."""
    try:
        plan = effective_plan(plan, settings)
        with build_lock(settings):
            results = provision.teardown(
                plan,
                credential_from(settings),
                subscription(settings, plan),
                confirm=confirm,
                client_options=client_options(settings),
                progress=progress,
            )
        if all(r.status == "deleted" for r in results):
            _forget_record(plan, settings)
        return results
    except provision.TeardownNotConfirmed as exc:
        return [StepResult("teardown", plan.names.resource_group, "failed", str(exc), "NotConfirmed", "List again.")]
    except BuildRunning:
        return [build_running(plan)]
    except Exception as exc:  # shown on the page with what to do, never a traceback
        log_unless_expected(exc)
        return [unexpected(plan, exc)]


def _forget_record(plan: Plan, settings: Settings) -> None:
    """Nothing of this plan is left in Azure: its deployment record goes (the pages' cloud panels with it).
    Not while a build runs (it may have just made the group), and not another plan's record."""
    try:
        with build_lock(settings):
            try:
                deployment = load_deployment(settings.state_dir)
            except ValueError:
                deployment = None
            same = deployment is None or (
                deployment.resource_group == plan.names.resource_group
                and deployment.subscription == plan.config.subscription_id
            )
            if same:
                forget_deployment(settings.state_dir)
                _target_back_to_local(settings)
    except BuildRunning:
        pass


def _target_back_to_local(settings: Settings) -> None:
    """Nothing is left to read from on Azure: the pages read this machine again."""
    if settings.pipeline_target == "azure":
        try:
            save_pipeline_target("local")
        except (OSError, ValueError):  # the pages then say the Azure target cannot be read, and where to change it
            log.warning("could not set the pipeline target back to local after teardown", exc_info=True)
