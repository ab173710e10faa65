"""The Setup page's Azure section and the cloud job panels (AppTest, in-process) against the Azure
stand-ins (tests/standins/azure_cloud.py: ARM + Entra ID, Ambari, the Databricks workspace API).

The settings reach the stand-ins through the environment: the service principal (AZURE_TENANT_ID,
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), the authority host, the ARM endpoint and the CA bundle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from backend.azure.plan import build_plan
from backend.azure.plan_config import load_config
from backend.azure.wizard import EXAMPLE_PLAN
from backend.settings import PROJECT_ROOT
from tests.standins.azure_arm import CLIENT_SECRET, ArmStandIn
from tests.standins.azure_cloud import AzureCloud

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def cloud(tmp_path) -> Iterator[AzureCloud]:
    with AzureCloud(tmp_path, build_plan(load_config(EXAMPLE_PLAN)).names.hdinsight_cluster) as stand_ins:
        yield stand_ins


@pytest.fixture
def arm(cloud: AzureCloud) -> ArmStandIn:
    return cloud.arm


def _environment(monkeypatch, tmp_path, cloud: AzureCloud, secret: str) -> None:
    for name in [n for n in os.environ if n.startswith(("TWEETSTREAM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    for name, value in cloud.console_environment(tmp_path, secret).items():
        monkeypatch.setenv(name, value)


def _page(monkeypatch, tmp_path, cloud: AzureCloud, secret: str = CLIENT_SECRET) -> AppTest:
    _environment(monkeypatch, tmp_path, cloud, secret)
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/setup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def page(monkeypatch, tmp_path, cloud) -> AppTest:
    return _page(monkeypatch, tmp_path, cloud)


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


def build(at: AppTest, confirm: bool) -> AppTest:
    if confirm:
        at.checkbox(key="azure-confirm").check().run()
    at.button(key="azure-create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def saved_passwords(tmp_path) -> list[str]:
    import tomllib

    saved = tomllib.loads((tmp_path / "secrets.toml").read_text())
    return [saved["azure_hdinsight_password"], saved["azure_hdinsight_ssh_password"]]


def test_the_plan_renders_with_its_total_and_the_principal_is_set(page: AppTest) -> None:
    frames = [frame.value for frame in page.dataframe]
    plan = next(frame for frame in frames if "USD/h" in frame.columns)
    assert "Microsoft.HDInsight/clusters" in set(plan["type"])
    total = plan["USD/h"].sum()
    text = "\n".join(str(m.value) for m in page.markdown)
    assert f"**Total: USD {total:.2f}/h**" in text and "prices as of" in text
    captions = "\n".join(str(c.value) for c in page.caption)
    assert "Service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET): **set**" in captions
    assert CLIENT_SECRET not in everything(page)


def test_sign_in_and_check_lists_the_subscription_and_says_access_is_enough(page: AppTest) -> None:
    page.button(key="azure-check").click().run()
    assert not page.exception
    subscriptions = next(f.value for f in page.dataframe if "subscription" in f.value.columns)
    assert list(subscriptions["name"]) == ["Tweet stream (test)"]
    successes = [str(s.value) for s in page.success]
    assert any("may create everything the plan needs" in s for s in successes), successes
    assert any("offers HDInsight and Azure Databricks" in s for s in successes), successes
    # The subscriptions found are now offered by name.
    chooser = page.selectbox(key="azure-subscription")
    assert chooser.options == ["Tweet stream (test) (00000000-0000-0000-0000-000000000000)"]


def test_region_and_resource_group_picked_on_the_page_make_the_plan(page: AppTest) -> None:
    assert page.selectbox(key="azure-region").options == ["eastus", "westeurope"]
    page.selectbox(key="azure-region").select("westeurope").run()
    page.text_input(key="azure-resource-group").input("tweets-weu").run()
    assert not page.exception
    plan = next(frame.value for frame in page.dataframe if "USD/h" in frame.value.columns)
    assert "tweets-weu" in set(plan["name"])
    text = "\n".join(str(m.value) for m in page.markdown)
    assert "region `westeurope`" in text


def test_build_needs_the_confirmation_then_builds_everything_then_resumes(
    page: AppTest, cloud: AzureCloud, tmp_path
) -> None:
    build(page, confirm=False)
    assert any("nothing was created" in str(w.value) for w in page.warning)
    assert cloud.arm.arm_calls() == []

    build(page, confirm=True)
    shown = lines(page)
    for expected in (
        "Microsoft.Resources/resourceGroups tweetstream-rg: created",
        # The Kafka subnet's outbound path and NSG, before the network and the cluster.
        "Microsoft.Network/publicIPAddresses tweetstream-kafka-nat-ip: created",
        "Microsoft.Network/natGateways tweetstream-kafka-nat: created",
        "Microsoft.Network/networkSecurityGroups tweetstream-kafka-nsg: created",
        "with tweetstream-kafka-nat and tweetstream-kafka-nsg",
        "Microsoft.HDInsight/clusters",
        "ambari.ip-advertising",
        "Connected",
        "databricks.cluster tweetstream-spark: created",
        "kafka.topic tweets: created (4 partitions, replication 3)",
        "databricks.volume tweetstream_databricks.tweetstream.streaming_state: created",
        "databricks.job tweetstream-consumer: created",
    ):
        assert any(expected in line for line in shown), (expected, shown)
    assert [str(e.value) for e in page.error] == []
    where = next(f.value for f in page.dataframe if list(f.value.columns) == ["what", "where"])
    facts = dict(zip(where["what"], where["where"], strict=True))
    assert facts["Kafka brokers (private IPs)"] == "10.0.0.12:9092,10.0.0.13:9092,10.0.0.14:9092"
    assert facts["Databricks workspace"] == cloud.dbx.url

    made = len(puts(cloud.arm))
    page.button(key="azure-create").click().run()
    assert puts(cloud.arm)[made:] == []
    assert any("databricks.cluster tweetstream-spark: exists" in line for line in lines(page))
    text = everything(page)
    assert CLIENT_SECRET not in text
    assert not any(password in text for password in saved_passwords(tmp_path))


def test_teardown_lists_then_deletes_after_confirmation(page: AppTest, cloud: AzureCloud) -> None:
    build(page, confirm=True)
    page.button(key="azure-list").click().run()
    listed = next(frame for frame in (f.value for f in page.dataframe) if list(frame.columns) == ["type", "name"])
    names = list(listed["name"])
    assert len(names) == 9 and names[-1] == "tweetstream-rg" and "tweetstream-databricks" in names
    assert names[-4:-1] == ["tweetstream-kafka-nsg", "tweetstream-kafka-nat", "tweetstream-kafka-nat-ip"]
    warnings = [str(w.value) for w in page.warning]
    assert any("checkpoint and archive (volume tweetstream.streaming_state)" in w for w in warnings), warnings
    assert page.button(key="azure-teardown").disabled is True

    page.checkbox(key="azure-teardown-confirm").check().run()
    page.button(key="azure-teardown").click().run()
    assert not page.exception
    shown = lines(page)
    assert sum(": deleted" in line for line in shown) == 9, shown
    page.run()
    assert not [f for f in page.dataframe if list(f.value.columns) == ["what", "where"]]  # the record went too


def test_a_wrong_client_secret_shows_a_sign_in_error(monkeypatch, tmp_path, cloud: AzureCloud) -> None:
    wrong = "not-the-secret-4711"
    at = _page(monkeypatch, tmp_path, cloud, secret=wrong)
    build(at, confirm=True)
    errors = [str(e.value) for e in at.error]
    assert any("SignInFailed" in e and "check the tenant, client id and secret" in e for e in errors), errors
    assert puts(cloud.arm) == []
    text = everything(at)
    assert wrong not in text and CLIENT_SECRET not in text


def state(at: AppTest) -> str:
    return (
        next(str(m.value) for m in at.markdown if "Run state: " in str(m.value))
        .split("**Run state: ")[1]
        .split("**")[0]
    )


def test_the_producer_and_consumer_pages_start_and_stop_the_cloud_jobs(page: AppTest, cloud: AzureCloud) -> None:
    build(page, confirm=True)
    for name in ("producer", "consumer"):
        page.switch_page(f"pages/{name}.py").run()
        assert not page.exception, [e.value for e in page.exception]
        assert any("On Azure Databricks" in str(h.value) for h in page.subheader)
        assert any("Run state: never run" in str(m.value) for m in page.markdown)

        page.button(key=f"cloud-{name}-start").click().run()
        assert any(str(s.value).startswith("Started run ") for s in page.success), [s.value for s in page.success]
        states = [state(page)]
        while states[-1] != "RUNNING" and len(states) < 5:  # the stand-in's run: PENDING, then RUNNING
            page.run()
            states.append(state(page))
        assert states[-1] == "RUNNING" and set(states) <= {"PENDING", "RUNNING"}, states

        page.button(key=f"cloud-{name}-stop").click().run()
        assert any("TERMINATED (CANCELED)" in str(s.value) for s in page.success), [s.value for s in page.success]
        assert any("Run state: TERMINATED (CANCELED)" in str(m.value) for m in page.markdown)
