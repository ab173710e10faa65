"""What every wizard action shares: one build or teardown at a time per state directory, and any failure
outside a step's own handling turned into a result that says what to do (never a traceback)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import replace

from azure.core.exceptions import AzureError, HttpResponseError

from backend.azure.arm import StepResult, advice_for, failure
from backend.azure.plan import Plan
from backend.settings import Settings

log = logging.getLogger(__name__)


class BuildRunning(RuntimeError):
    """Another build holds the lock."""


@contextlib.contextmanager
def build_lock(settings: Settings) -> Iterator[None]:
    """One build at a time per state directory: two would both create the Databricks cluster (find, then
    create) and race on the logins and the deployment record."""
    folder = settings.state_dir / "azure"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildRunning() from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_running(plan: Plan) -> StepResult:
    return StepResult(
        "build",
        plan.names.resource_group,
        "failed",
        "another build or teardown is running (another tab or session of this console)",
        "BuildRunning",
        "Wait until it ends (its lines show in the tab that started it), then run again.",
    )


def log_unless_expected(exc: Exception) -> None:
    """Service and settings errors are the user's to fix (the result says how); anything else is ours: log it."""
    if not isinstance(exc, AzureError | ValueError | OSError):
        log.exception("the Azure wizard stopped")


def unexpected(plan: Plan, exc: Exception) -> StepResult:
    """A failure outside a step's own handling as a result: ARM's code and advice (arm's mapping)
    for a service error, else the exception's type and first line."""
    if isinstance(exc, HttpResponseError):  # ClientAuthenticationError too
        result = failure(plan, "azure", plan.names.resource_group, exc)
        return replace(result, type="sign-in") if result.error_code == "SignInFailed" else result
    code, message = type(exc).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StepResult(
        "sign-in" if code == "SignInFailed" else "azure",
        plan.names.resource_group,
        "failed",
        f"{code}: {message}",
        code,
        advice_for(code, plan, "the request"),
    )
