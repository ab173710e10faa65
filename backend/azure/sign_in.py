"""The Setup page's "Sign in and check", before planning: the subscriptions this identity sees, whether it
may create the plan's resources, and whether the region offers them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.azure import access
from backend.azure.arm import StepResult
from backend.azure.credentials import client_options, credential_from, effective_plan, subscription
from backend.azure.plan import Plan
from backend.azure.wizard_guard import log_unless_expected, unexpected
from backend.settings import Settings


@dataclass(frozen=True)
class SignInCheck:
    """What the Setup page shows after "Sign in and check"."""

    subscriptions: list[Any]  # access.SubscriptionInfo
    access: Any | None  # access.AccessReport
    region_problems: list[str]
    failure: StepResult | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.access is not None and self.access.ok and not self.region_problems


def sign_in_check(plan: Plan, settings: Settings) -> SignInCheck:
    """Sign in, list the subscriptions, check access and the region; failures come back in ``failure``."""
    try:
        plan = effective_plan(plan, settings)
        credential = credential_from(settings)
        options = client_options(settings)
        subscriptions = access.list_subscriptions(credential, client_options=options)
        sub = subscription(settings, plan)
        report = access.check_access(plan, credential, sub, client_options=options)
        problems = access.check_region(plan, credential, sub, client_options=options)
    except Exception as exc:  # shown on the page with what to do, never a traceback
        log_unless_expected(exc)
        return SignInCheck([], None, [], unexpected(plan, exc))
    return SignInCheck(subscriptions, report, problems)
