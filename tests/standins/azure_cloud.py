"""All of the Azure stand-ins wired together as the wizard meets them, for tests of the whole wizard.

- ARM + Entra ID (azure_arm.py) with HDInsight (arm_hdinsight.py), Databricks workspaces, peerings,
  permissions and providers (arm_databricks.py) installed;
- Ambari behind the cluster's gateway (ambari.py): the HDInsight cluster's HTTPS endpoint points at
  it, and it accepts exactly the cluster login the cluster was created with;
- the workspace's REST API (databricks_rest.py): the workspace URL points at it, and it accepts
  exactly the Entra token ARM's stand-in issues; with its SQL warehouses and statement execution
  (sql_warehouse.py), whose statements run through ``sql_executor`` when the test gives one (e.g.
  ``spark_executor`` over local Delta tables; without one a statement ends FAILED).
Each serves HTTPS with its own certificate; ``ca_bundle`` holds the three.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.standins.ambari import AmbariStandIn
from tests.standins.arm_databricks import install_access, install_databricks
from tests.standins.arm_hdinsight import install_hdinsight
from tests.standins.azure_arm import CLIENT_ID, CLIENT_SECRET, TENANT, ArmStandIn
from tests.standins.databricks_rest import DatabricksStandIn
from tests.standins.sql_warehouse import Executor, install_sql_warehouse
from tests.standins.unity_catalog import install_unity_catalog

# What jobs/create_topic.py prints on success (the stand-in cannot run it: tests/integration/
# test_create_topic_job.py runs the real one against a real broker).
TOPIC_CREATED = '{"outcome": "created", "partitions": 4, "replication": 3, "topic": "tweets"}'


class GatewayAmbari(AmbariStandIn):
    """Ambari that accepts the cluster login the HDInsight cluster was created with (read from the ARM
    stand-in's record of the create request), as the real gateway does."""

    def __init__(self, arm: ArmStandIn, cluster: str) -> None:
        self.arm = arm
        super().__init__(cluster, "", polls=2, kafka_state="STARTED")

    @property
    def password(self) -> str:  # type: ignore[override]
        for call in reversed(self.arm.calls):
            if call.method == "PUT" and "/Microsoft.HDInsight/clusters/" in call.path and isinstance(call.body, dict):
                gateway = call.body["properties"]["clusterDefinition"]["configurations"]["gateway"]
                return str(gateway["restAuthCredential.password"])
        return "\0no cluster yet"

    @password.setter
    def password(self, value: str) -> None:
        pass  # always the cluster's own


class AzureCloud:
    """``with AzureCloud(folder, cluster_name) as cloud:`` then ``cloud.environment()`` for the console."""

    def __init__(self, folder: Path, cluster: str, sql_executor: Executor | None = None) -> None:
        self.folder = folder
        self.cluster = cluster
        self.sql_executor = sql_executor
        self._stack = ExitStack()

    def __enter__(self) -> AzureCloud:
        self.arm = self._stack.enter_context(ArmStandIn(polls=2))
        self.dbx = self._stack.enter_context(DatabricksStandIn(self.arm.token, polls=2))
        self.sql = install_sql_warehouse(self.dbx, self.sql_executor)
        self.uc = install_unity_catalog(self.dbx)
        self.ambari = self._stack.enter_context(GatewayAmbari(self.arm, self.cluster))
        install_access(self.arm)
        install_hdinsight(self.arm, gateway=(self.ambari.host, self.ambari.port))
        install_databricks(self.arm, workspace_host=self.dbx.host, unity_catalog=self.uc)
        self.dbx.script_logs("jobs.create_topic", TOPIC_CREATED)
        self.ca_bundle = self.folder / "azure-ca-bundle.pem"
        self.ca_bundle.write_bytes(
            b"".join(Path(p).read_bytes() for p in (self.arm.ca_path, self.ambari.ca_path, self.dbx.ca_path))
        )
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def environment(self, secret: str = CLIENT_SECRET) -> dict[str, str]:
        """The console's settings that reach these stand-ins (a service principal, endpoints, CA bundle)."""
        return {
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": secret,
            "TWEETSTREAM_AZURE_AUTHORITY_HOST": self.arm.base_url,
            "TWEETSTREAM_AZURE_ARM_ENDPOINT": self.arm.base_url,
            "TWEETSTREAM_AZURE_CA_BUNDLE": str(self.ca_bundle),
            "TWEETSTREAM_AZURE_POLLING_INTERVAL_S": "0",
        }

    def console_environment(self, folder: Path, secret: str = CLIENT_SECRET) -> dict[str, str]:
        """Everything a test's console needs to use these stand-ins and nothing of the developer's: a state
        folder and secrets file in ``folder``, broker ports nobody uses, and ``environment()``."""
        from tests.support import free_port

        return {
            "TWEETSTREAM_STATE_DIR": str(folder / "state"),
            "TWEETSTREAM_SECRETS_FILE": str(folder / "secrets.toml"),
            "TWEETSTREAM_KAFKA_PORT": str(free_port()),
            "TWEETSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
            **self.environment(secret),
        }

    def arm_writes(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.arm.arm_calls() if c.method in ("PUT", "POST", "DELETE")]
