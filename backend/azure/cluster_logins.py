"""The HDInsight cluster's logins as the build uses them: the settings' where set, new random ones for the
rest, saved to the secrets file before the cluster is created with them (a rerun and Ambari need them)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from backend.azure.arm import HDINSIGHT_CLUSTER, StepResult
from backend.azure.hdinsight import ClusterLogins, new_logins
from backend.azure.plan import Plan
from backend.settings import Settings, secrets_file
from backend.settings_file import save_top_level


class LoginsMissing(RuntimeError):
    """The HDInsight cluster exists, but the secrets file has not its cluster login password."""


def cluster_logins(settings: Settings, cluster_exists: bool) -> tuple[ClusterLogins, dict[str, str]]:
    """The HDInsight logins: the settings' where set, new ones for the rest; and the new ones to save
    (settings key -> value) before the cluster is created with them. A cluster that exists keeps the
    logins it was created with: then a missing cluster password is an error (LoginsMissing), and a
    missing SSH password does not matter (nothing here uses SSH)."""
    fresh = new_logins()
    gateway, ssh = settings.azure_hdinsight_password, settings.azure_hdinsight_ssh_password
    if cluster_exists and gateway is None:
        raise LoginsMissing()
    logins = ClusterLogins(
        gateway_password=SecretStr(gateway.get_secret_value()) if gateway is not None else fresh.gateway_password,
        ssh_password=SecretStr(ssh.get_secret_value()) if ssh is not None else fresh.ssh_password,
    )
    to_save: dict[str, str] = {}
    if not cluster_exists:
        if gateway is None:
            to_save["azure_hdinsight_password"] = logins.gateway_password.get_secret_value()
        if ssh is None:
            to_save["azure_hdinsight_ssh_password"] = logins.ssh_password.get_secret_value()
    return logins, to_save


def save_logins(values: Mapping[str, str]) -> None:
    """Into the secrets file (mode 0600), before the cluster is created with them: a rerun and Ambari need
    them. Only the given keys are written; the file's other keys stay."""
    if values:
        save_top_level(secrets_file(), values, tuple(values))


def logins_missing(plan: Plan) -> StepResult:
    """The build's failed result when the cluster exists but its login password is not in the settings."""
    return StepResult(
        HDINSIGHT_CLUSTER,
        plan.names.hdinsight_cluster,
        "failed",
        "LoginsMissing: the cluster exists, but its cluster login password is not in the settings",
        "LoginsMissing",
        f"Set azure_hdinsight_password in {secrets_file()} (or TWEETSTREAM_AZURE_HDINSIGHT_PASSWORD) to the "
        "cluster login password it was created with, or reset it in the Azure portal (the cluster, "
        "Settings, Cluster login) and set the new one; then run again.",
    )
