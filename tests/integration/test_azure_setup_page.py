"""The Setup page's Azure section (AppTest, in-process) against the ARM + Entra ID stand-in.

The settings reach the stand-in through the environment: the service principal (AZURE_TENANT_ID,
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), the authority host, the ARM endpoint and its CA bundle.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from backend.settings import PROJECT_ROOT
from tests.standins.azure_arm import CLIENT_ID, CLIENT_SECRET, TENANT, ArmStandIn
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)

CREATE = "Create the first steps (resource group, network, storage)"


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    with ArmStandIn(polls=2) as standin:
        yield standin


def _environment(monkeypatch, tmp_path, arm: ArmStandIn, secret: str) -> None:
    monkeypatch.setenv("TWEETSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TWEETSTREAM_SECRETS_FILE", str(tmp_path / "secrets.toml"))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_PORT", str(free_port()))
    monkeypatch.setenv("TWEETSTREAM_KAFKA_CONTROLLER_PORT", str(free_port()))
    monkeypatch.delenv("TWEETSTREAM_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    monkeypatch.setenv("TWEETSTREAM_AZURE_AUTHORITY_HOST", arm.base_url)
    monkeypatch.setenv("TWEETSTREAM_AZURE_ARM_ENDPOINT", arm.base_url)
    monkeypatch.setenv("TWEETSTREAM_AZURE_CA_BUNDLE", str(arm.ca_path))
    monkeypatch.setenv("TWEETSTREAM_AZURE_POLLING_INTERVAL_S", "0")


def _page(monkeypatch, tmp_path, arm: ArmStandIn, secret: str = CLIENT_SECRET) -> AppTest:
    _environment(monkeypatch, tmp_path, arm, secret)
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=30)
    at.run()
    at.switch_page("pages/setup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def page(monkeypatch, tmp_path, arm) -> AppTest:
    return _page(monkeypatch, tmp_path, arm)


def everything(at: AppTest) -> str:
    """Every rendered element's text, as one string (for the secret check)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "text", "code", "status"):
        for element in getattr(at, kind, []):
            parts.append(str(getattr(element, "value", "")) + str(getattr(element, "label", "")))
    for element in at.text_input:
        parts.append(str(element.value))
    for element in list(at.checkbox) + list(at.button) + list(at.expander):
        parts.append(str(element.label))
    for frame in at.dataframe:
        parts.append(frame.value.to_csv())
    parts.append(str(at._tree))
    return "\n".join(parts)


def lines(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.markdown] + [str(e.value) for e in at.error]


def puts(arm: ArmStandIn) -> list[str]:
    return [call.path.rsplit("/", 1)[-1] for call in arm.arm_calls() if call.method == "PUT"]


def create(at: AppTest, confirm: bool) -> AppTest:
    if confirm:
        at.checkbox(key="azure-confirm").check().run()
    at.button(key="azure-create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_plan_renders_with_its_total_and_the_principal_is_set(page: AppTest) -> None:
    frames = [frame.value for frame in page.dataframe]
    plan = next(frame for frame in frames if "USD/h" in frame.columns)
    assert "Microsoft.Resources/resourceGroups" in set(plan["type"])
    total = plan["USD/h"].sum()
    text = "\n".join(str(m.value) for m in page.markdown)
    assert f"**Total: USD {total:.2f}/h**" in text and "prices as of" in text
    captions = "\n".join(str(c.value) for c in page.caption)
    assert "Service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET): **set**" in captions
    assert any("Not built yet" in str(i.value) and "HDInsight" in str(i.value) for i in page.info)
    assert CLIENT_SECRET not in everything(page)


def test_create_needs_the_confirmation_then_creates_then_finds(page: AppTest, arm: ArmStandIn) -> None:
    create(page, confirm=False)
    assert any("nothing was created" in str(w.value) for w in page.warning)
    assert arm.arm_calls() == []

    create(page, confirm=True)
    shown = lines(page)
    for kind in ("resourceGroups", "virtualNetworks", "storageAccounts"):
        assert any(kind in line and ": created" in line for line in shown), shown
    made = puts(arm)
    assert len(made) == 3 and made[:2] == ["tweetstream-rg", "tweetstream-kafka-vnet"], made

    arm.calls.clear()
    page.button(key="azure-create").click().run()
    shown = lines(page)
    assert sum(": exists" in line for line in shown) == 3, shown
    assert puts(arm) == []
    assert CLIENT_SECRET not in everything(page)


def test_teardown_lists_then_deletes_after_confirmation(page: AppTest, arm: ArmStandIn) -> None:
    create(page, confirm=True)
    page.button(key="azure-list").click().run()
    listed = next(frame for frame in (f.value for f in page.dataframe) if list(frame.columns) == ["type", "name"])
    names = list(listed["name"])
    assert len(names) == 3 and "tweetstream-rg" in names
    assert page.button(key="azure-teardown").disabled is True
    arm.calls.clear()

    page.checkbox(key="azure-teardown-confirm").check().run()
    page.button(key="azure-teardown").click().run()
    assert not page.exception
    shown = lines(page)
    assert sum(": deleted" in line for line in shown) == 3, shown
    assert [call.method for call in arm.arm_calls() if call.method == "DELETE"] == ["DELETE"] * 3
    assert arm.state.resources == {}


def test_a_wrong_client_secret_shows_a_sign_in_error(monkeypatch, tmp_path, arm: ArmStandIn) -> None:
    wrong = "not-the-secret-4711"
    at = _page(monkeypatch, tmp_path, arm, secret=wrong)
    create(at, confirm=True)
    errors = [str(e.value) for e in at.error]
    assert any("SignInFailed" in e and "check the tenant, client id and secret" in e for e in errors), errors
    assert puts(arm) == []
    text = everything(at)
    assert wrong not in text and CLIENT_SECRET not in text
