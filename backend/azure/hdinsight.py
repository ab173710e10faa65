"""The plan's HDInsight 5.1 Kafka cluster: create (or find) it, read its HTTPS gateway, delete it.

Made as the article's template made it (Kafka 3.2, every role in the plan's subnet, the plan's storage
account as its file system, TLS 1.2, the tag). The logins are SecretStr and go into the create request
only, never into a result, message or log line. Resume, a Failed cluster and the ~20 minutes' progress
lines: docs/azure-design.md ("The HDInsight Kafka cluster").
"""

from __future__ import annotations

import functools
import queue
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.mgmt.core.polling.arm_polling import ARMPolling
from azure.mgmt.hdinsight import HDInsightManagementClient
from azure.mgmt.hdinsight.models import (
    Cluster,
    ClusterCreateParametersExtended,
    ClusterCreateProperties,
    ClusterDefinition,
    ComputeProfile,
    DataDisksGroups,
    HardwareProfile,
    LinuxOperatingSystemProfile,
    NameAvailabilityCheckRequestParameters,
    OsProfile,
    Role,
    StorageAccount,
    StorageProfile,
    VirtualNetworkProfile,
)
from azure.mgmt.storage import StorageManagementClient
from pydantic import SecretStr

from backend.azure import arm
from backend.azure.arm import ARM_ERRORS, HDINSIGHT_CLUSTER, Progress, StepResult, report
from backend.azure.plan import Plan
from backend.azure.plan_config import HDINSIGHT_KAFKA_VERSION, HDINSIGHT_VERSION, HEAD_NODES, TAG_KEY, ZOOKEEPER_NODES

BLOB_SUFFIX = ".blob.core.windows.net"
DEFAULT_POLL_SECONDS = 30.0  # the management clients' default polling interval

# Characters the random passwords draw from. The cluster login password may not hold
# ' " \ ] or . (HDInsight's rule); the specials here also need no quoting in a shell or a URL.
_SPECIALS = "!#%*+-=?@^_"
_NOT_IN_GATEWAY_PASSWORD = "'\"\\]."
_PASSWORD_LENGTH = 24


CREATION_WAIT_S = 3600.0  # how long a rerun waits for a creation an earlier run started (HDInsight: ~20 min)


class StillCreating(RuntimeError):
    """A creation an earlier run started has not ended within CREATION_WAIT_S."""


class ClusterNotReady(RuntimeError):
    """The cluster has no HTTPS endpoint yet (still being created, or failed)."""


@dataclass(frozen=True)
class ClusterLogins:
    """The cluster login (HTTPS gateway, Ambari) and the nodes' SSH login."""

    gateway_password: SecretStr
    ssh_password: SecretStr
    gateway_user: str = "admin"
    ssh_user: str = "sshuser"


def _holds_three_of(password: str, user: str) -> bool:
    low, user = password.lower(), user.lower()
    return any(user[i : i + 3] in low for i in range(len(user) - 2))


def login_problems(logins: ClusterLogins) -> list[str]:
    """What breaks HDInsight's login rules, one message each; never the passwords themselves.

    HDInsight's templates state them: the cluster login password has at least 10 characters with
    a digit, an upper and a lower case letter and a non-alphanumeric character other than
    ' " \\ ] . ; neither password holds 3 consecutive characters of either user name. The SSH user
    may not be "admin". The SSH password takes the stricter of the templates' rules (the Kafka one says
    6-72 characters, others "at least 10 characters ... one digit, one non-alphanumeric character"):
    10-72 characters with a digit, an upper and a lower case letter and a non-alphanumeric character.
    """
    problems: list[str] = []
    users = (logins.gateway_user, logins.ssh_user)
    if not 2 <= len(logins.gateway_user) <= 20:
        problems.append("the cluster login user name must be 2-20 characters")
    if not logins.ssh_user or logins.ssh_user.lower() == "admin":
        problems.append("the SSH user name must be set and must not be 'admin'")
    for what, secret, gateway in (
        ("the cluster login password", logins.gateway_password, True),
        ("the SSH password", logins.ssh_password, False),
    ):
        password = secret.get_secret_value()
        if gateway and len(password) < 10:
            problems.append(f"{what} must be at least 10 characters")
        if not gateway and not 10 <= len(password) <= 72:
            problems.append(f"{what} must be 10-72 characters")
        if not (any(c.isdigit() for c in password) and any(c.isupper() for c in password)):
            problems.append(f"{what} must contain a digit and an upper case letter")
        if not any(c.islower() for c in password):
            problems.append(f"{what} must contain a lower case letter")
        if all(c.isalnum() for c in password):
            problems.append(f"{what} must contain a non-alphanumeric character")
        if gateway and any(c in _NOT_IN_GATEWAY_PASSWORD for c in password):
            problems.append(f"{what} must not contain ' \" \\ ] or .")
        if any(_holds_three_of(password, user) for user in users):
            problems.append(f"{what} must not contain 3 consecutive characters of a user name")
    return problems


def _random_password() -> str:
    # One of each required class, the rest from all of them, shuffled by the system's CSPRNG.
    alphabet = string.ascii_letters + string.digits + _SPECIALS
    chars = [
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.digits),
        secrets.choice(_SPECIALS),
    ]
    chars += [secrets.choice(alphabet) for _ in range(_PASSWORD_LENGTH - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def new_logins() -> ClusterLogins:
    """Random passwords (24 characters) for both logins that meet HDInsight's rules."""
    while True:
        logins = ClusterLogins(SecretStr(_random_password()), SecretStr(_random_password()))
        if not login_problems(logins):  # e.g. "adm" or "ssh" drawn by chance: draw again
            return logins


# --- the create request ---------------------------------------------------------------------------


def kafka_cluster_parameters(plan: Plan, logins: ClusterLogins, storage_key: str) -> ClusterCreateParametersExtended:
    """The Clusters_Create body for the plan (as the spec's CreateKafkaClusterWithKafkaRestProxy.json,
    without the REST proxy, with every role in the plan's subnet as in
    CreateHDInsightClusterWithCustomNetworkProperties.json, and TLS 1.2 as in CreateHDInsightClusterWithTLS12.json).
    """
    config, names = plan.config, plan.names
    hdi = config.hdinsight
    group = f"/subscriptions/{config.subscription_id}/resourceGroups/{names.resource_group}"
    vnet_id = f"{group}/providers/Microsoft.Network/virtualNetworks/{names.kafka_vnet}"
    network = VirtualNetworkProfile(id=vnet_id, subnet=f"{vnet_id}/subnets/{names.kafka_subnet}")
    linux = OsProfile(
        linux_operating_system_profile=LinuxOperatingSystemProfile(
            username=logins.ssh_user, password=logins.ssh_password.get_secret_value()
        )
    )

    def role(name: str, count: int, size: str, disks: int | None = None) -> Role:
        return Role(
            name=name,
            target_instance_count=count,
            hardware_profile=HardwareProfile(vm_size=size),
            os_profile=linux,
            virtual_network_profile=network,
            data_disks_groups=None if disks is None else [DataDisksGroups(disks_per_node=disks)],
        )

    return ClusterCreateParametersExtended(
        location=config.region,
        tags={TAG_KEY: config.tag_value},
        properties=ClusterCreateProperties(
            cluster_version=HDINSIGHT_VERSION,
            os_type="Linux",
            tier="Standard",
            cluster_definition=ClusterDefinition(
                kind="kafka",
                component_version={"Kafka": HDINSIGHT_KAFKA_VERSION},
                configurations={
                    "gateway": {
                        "restAuthCredential.isEnabled": True,
                        "restAuthCredential.username": logins.gateway_user,
                        "restAuthCredential.password": logins.gateway_password.get_secret_value(),
                    }
                },
            ),
            compute_profile=ComputeProfile(
                roles=[
                    role("headnode", HEAD_NODES, hdi.head_node_size),
                    role("workernode", hdi.worker_count, hdi.worker_node_size, hdi.disks_per_worker),
                    role("zookeepernode", ZOOKEEPER_NODES, hdi.zookeeper_node_size),
                ]
            ),
            storage_profile=StorageProfile(
                storageaccounts=[
                    StorageAccount(
                        name=names.storage_account + BLOB_SUFFIX,
                        is_default=True,
                        container=names.storage_container,
                        key=storage_key,
                    )
                ]
            ),
            min_supported_tls_version="1.2",
        ),
    )


# --- helpers --------------------------------------------------------------------------------------


def _scrub(result: StepResult, hidden: list[str]) -> StepResult:
    """The result with any secret replaced, should a service have echoed one into a message."""
    detail, advice = result.detail, result.advice
    for value in hidden:
        if value:
            detail = detail.replace(value, "***")
            advice = advice.replace(value, "***") if advice else advice
    return replace(result, detail=detail, advice=advice)


def _cluster_advice(code: str | None, plan: Plan) -> str:
    name = plan.names.hdinsight_cluster
    if code == "AlreadyExists":
        return (
            f"The cluster name {name!r} is taken elsewhere in Azure (cluster names are global DNS names, "
            f"{name}.azurehdinsight.net): set another name_prefix or names.hdinsight_cluster in the config and "
            "run again; what was created so far is kept and found again."
        )
    if code == "ClusterFailed":
        return (
            f"HDInsight cannot repair or re-create a failed cluster in place: delete {name!r} (teardown) and run "
            "again. Until it is deleted it may still be billed for its nodes."
        )
    if code == "ClusterDeleting":
        return f"Wait until {name!r} is deleted (a few minutes), then run again to create it anew."
    if code == "InvalidClusterLogin":
        return "Choose logins that meet HDInsight's rules (or let the wizard make random ones), then run again."
    if code == "ClusterStillCreating":
        return f"Creating {name!r} takes longer than usual: run again later to go on waiting (nothing is lost)."
    return arm.advice_for(code, plan, HDINSIGHT_CLUSTER)


def _summary(plan: Plan) -> str:
    hdi = plan.config.hdinsight
    return (
        f"HDInsight {HDINSIGHT_VERSION}, Kafka {HDINSIGHT_KAFKA_VERSION}, {hdi.worker_count} brokers "
        f"({hdi.worker_node_size}, {hdi.disks_per_worker} disks each)"
    )


def _cluster_state(cluster: Cluster | None) -> str | None:
    props = getattr(cluster, "properties", None)
    return None if props is None else props.cluster_state


def _errors(cluster: Cluster) -> str:
    errors = getattr(cluster.properties, "errors", None) or []
    return "; ".join(f"{error.code}: {error.message}" for error in errors) or "no error given"


def _differences(plan: Plan, cluster: Cluster) -> list[str]:
    """How an existing cluster's roles differ from the plan's ("workernode count 4, plan 3")."""
    hdi = plan.config.hdinsight
    wanted = {
        "headnode": (HEAD_NODES, hdi.head_node_size, None),
        "workernode": (hdi.worker_count, hdi.worker_node_size, hdi.disks_per_worker),
        "zookeepernode": (ZOOKEEPER_NODES, hdi.zookeeper_node_size, None),
    }
    compute = getattr(cluster.properties, "compute_profile", None)
    roles = {role.name: role for role in (getattr(compute, "roles", None) or [])}
    found: list[str] = []
    for name, (count, size, disks) in wanted.items():
        role = roles.get(name)
        if role is None:
            found.append(f"no {name} role")
            continue
        if role.target_instance_count != count:
            found.append(f"{name} count {role.target_instance_count}, plan {count}")
        vm_size = getattr(role.hardware_profile, "vm_size", None) or ""
        if vm_size.lower() != size.lower():  # the service answers sizes in lower case
            found.append(f"{name} size {vm_size}, plan {size}")
        groups = role.data_disks_groups or []
        if disks is not None and (not groups or groups[0].disks_per_node != disks):
            have = groups[0].disks_per_node if groups else 0
            found.append(f"{name} disks {have}, plan {disks}")
    return found


class _ClusterStatePolling(ARMPolling):
    """The SDK's ARM polling, plus a call after each status poll while the operation runs."""

    def __init__(self, interval: float, after_poll: Callable[[], None]) -> None:
        super().__init__(interval, lro_options={"final-state-via": "location"})  # as Clusters_Create's spec
        self._after_poll = after_poll

    def update_status(self) -> None:
        super().update_status()
        if not self.finished():
            self._after_poll()


# --- the step -------------------------------------------------------------------------------------


def ensure_kafka_cluster(
    plan: Plan,
    credential: TokenCredential,
    subscription: str,
    logins: ClusterLogins,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> StepResult:
    """Create the plan's Kafka cluster, or find it (resume), and wait until it runs.

    Returns "created", "exists" or "failed" (with ARM's code and message and what to do);
    reports "creating" lines (with clusterState) to ``progress`` meanwhile. Raises nothing
    for ARM or sign-in errors: they become the failed result.
    """
    names = plan.names
    rg, name = names.resource_group, names.hdinsight_cluster
    options = dict(client_options or {})
    interval = float(options.get("polling_interval", DEFAULT_POLL_SECONDS))
    hidden = [logins.gateway_password.get_secret_value(), logins.ssh_password.get_secret_value()]
    show = functools.partial(report, progress)
    try:
        hdinsight = HDInsightManagementClient(credential, subscription, **options)
        existing: Cluster | None = arm.get_or_none(lambda: hdinsight.clusters.get(rg, name))
        if existing is not None:
            return _existing_cluster(hdinsight, plan, existing, interval, show)

        # The logins' rules matter only to a cluster being created (an existing one keeps its own).
        problems = login_problems(logins)
        if problems:
            return _cluster_failure(plan, "InvalidClusterLogin", "; ".join(problems))

        availability = hdinsight.locations.check_name_availability(
            plan.config.region, NameAvailabilityCheckRequestParameters(name=name, type="clusters")
        )
        if availability.name_available is False:
            reason = availability.reason or "AlreadyExists"
            return _cluster_failure(plan, reason, availability.message or f"Cluster name '{name}' is unavailable")

        storage = StorageManagementClient(credential, subscription, **options)
        keys = storage.storage_accounts.list_keys(rg, names.storage_account).keys_property or []
        key = keys[0].value if keys and keys[0].value else ""
        hidden.append(key)
        show(StepResult(HDINSIGHT_CLUSTER, name, "creating", f"{_summary(plan)}; this takes about 20 minutes"))
        _create(hdinsight, plan, kafka_cluster_parameters(plan, logins, key), interval, show)
        return StepResult(HDINSIGHT_CLUSTER, name, "created", _summary(plan))
    except StillCreating as exc:
        return _cluster_failure(plan, "ClusterStillCreating", str(exc))
    except ARM_ERRORS as exc:
        result = arm.failure(plan, HDINSIGHT_CLUSTER, name, exc)
        if result.error_code is not None:
            result = replace(result, advice=_cluster_advice(result.error_code, plan))
        return _scrub(result, hidden)


def _cluster_failure(plan: Plan, code: str, detail: str) -> StepResult:
    name = plan.names.hdinsight_cluster
    return StepResult(HDINSIGHT_CLUSTER, name, "failed", f"{code}: {detail}", code, _cluster_advice(code, plan))


def _existing_cluster(
    hdinsight: HDInsightManagementClient,
    plan: Plan,
    existing: Cluster,
    interval: float,
    show: Callable[[StepResult], StepResult],
) -> StepResult:
    """The result for a cluster that exists: ours and Succeeded (after waiting for a creation an earlier
    run started), or why it cannot be used."""
    name = plan.names.hdinsight_cluster
    if not arm.is_ours(existing, plan.config.tag_value):
        return arm.refusal(plan, HDINSIGHT_CLUSTER, name, f"exists without the tag {TAG_KEY}={plan.config.tag_value}")
    state = arm.provisioning_state(existing)
    if state == "InProgress":
        existing = _wait_for_creation(hdinsight, plan, interval, show)
        state = arm.provisioning_state(existing)
        if state == "Succeeded":
            return StepResult(HDINSIGHT_CLUSTER, name, "created", _summary(plan) + "; started by an earlier run")
    if state == "Succeeded":
        version = existing.properties.cluster_version or "?"
        detail = f"HDInsight {version}, clusterState {_cluster_state(existing)}"
        differences = _differences(plan, existing)
        if differences:  # a config edited after creation: say so rather than pretend it applies
            detail += "; differs from the plan (not changed here): " + ", ".join(differences)
        return StepResult(HDINSIGHT_CLUSTER, name, "exists", detail)
    if state == "Deleting":
        return _cluster_failure(plan, "ClusterDeleting", f"{name} is being deleted")
    return _cluster_failure(plan, "ClusterFailed", f"{name} is {state}: {_errors(existing)}")


def _create(
    hdinsight: HDInsightManagementClient,
    plan: Plan,
    parameters: ClusterCreateParametersExtended,
    interval: float,
    show: Callable[[StepResult], StepResult],
) -> None:
    rg, name = plan.names.resource_group, plan.names.hdinsight_cluster
    states: queue.SimpleQueue[str] = queue.SimpleQueue()

    def after_poll() -> None:  # on the SDK's polling thread: only read, hand over through the queue
        try:
            state = _cluster_state(hdinsight.clusters.get(rg, name))
        except HttpResponseError:
            return  # a missed progress line; the operation's own poll decides the outcome
        if state:
            states.put(state)

    poller = hdinsight.clusters.begin_create(rg, name, parameters, polling=_ClusterStatePolling(interval, after_poll))
    last: str | None = None
    while True:
        finished = poller.done()
        while not states.empty():
            state = states.get()
            if state != last:
                show(StepResult(HDINSIGHT_CLUSTER, name, "creating", f"clusterState {state}"))
                last = state
        if finished:
            break
        poller.wait(timeout=0.2)
    poller.result()  # raises the operation's error, if it failed


def _wait_for_creation(
    hdinsight: HDInsightManagementClient, plan: Plan, interval: float, show: Callable[[StepResult], StepResult]
) -> Cluster:
    """Wait for a creation an earlier run started (its operation is not ours to poll): GET until it ends."""
    rg, name = plan.names.resource_group, plan.names.hdinsight_cluster
    last: str | None = None
    deadline = time.monotonic() + CREATION_WAIT_S
    while True:
        cluster = hdinsight.clusters.get(rg, name)
        state = _cluster_state(cluster)
        if arm.provisioning_state(cluster) != "InProgress":
            return cluster
        if time.monotonic() > deadline:
            raise StillCreating(f"{name} is still being created (clusterState {state}) after {CREATION_WAIT_S:.0f} s")
        if state != last:
            show(StepResult(HDINSIGHT_CLUSTER, name, "creating", f"clusterState {state} (started by an earlier run)"))
            last = state
        time.sleep(interval)


def our_cluster_exists(
    plan: Plan, credential: TokenCredential, subscription: str, *, client_options: Mapping[str, Any] | None = None
) -> bool:
    """Whether the plan's cluster exists with the plan's tag, made or being made (not Failed or Deleting): one
    that keeps the logins it was created with. Raises ARM's errors."""
    hdinsight = HDInsightManagementClient(credential, subscription, **dict(client_options or {}))
    cluster = arm.get_or_none(lambda: hdinsight.clusters.get(plan.names.resource_group, plan.names.hdinsight_cluster))
    return (
        cluster is not None
        and arm.is_ours(cluster, plan.config.tag_value)
        and arm.provisioning_state(cluster) in ("Succeeded", "InProgress")
    )


# --- the gateway and deletion ---------------------------------------------------------------------


def cluster_gateway(
    plan: Plan, credential: TokenCredential, subscription: str, *, client_options: Mapping[str, Any] | None = None
) -> str:
    """The cluster's HTTPS endpoint as "https://HOST" (":PORT" unless 443): Ambari is reached through it.

    Raises azure.core.exceptions.ResourceNotFoundError if there is no such cluster, ClusterNotReady
    if it has no HTTPS endpoint yet, HttpResponseError for other ARM errors.
    """
    hdinsight = HDInsightManagementClient(credential, subscription, **dict(client_options or {}))
    cluster = hdinsight.clusters.get(plan.names.resource_group, plan.names.hdinsight_cluster)
    endpoints = getattr(cluster.properties, "connectivity_endpoints", None) or []
    for endpoint in endpoints:
        if (endpoint.name or "").upper() == "HTTPS" and endpoint.location:
            port = endpoint.port or 443
            return f"https://{endpoint.location}" + ("" if port == 443 else f":{port}")
    raise ClusterNotReady(
        f"HDInsight cluster {plan.names.hdinsight_cluster} has no HTTPS endpoint yet "
        f"(provisioningState {arm.provisioning_state(cluster)}, clusterState {_cluster_state(cluster)})"
    )


def delete_kafka_cluster(
    plan: Plan,
    credential: TokenCredential,
    subscription: str,
    *,
    client_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> StepResult:
    """Delete the plan's cluster (a long-running operation) if it carries the plan's tag.

    Returns "deleted" (detail "not there" when there was none), or "failed": for ARM errors, and
    for a cluster without the tag, which is not ours to delete (NameTakenNotOurs).
    """
    rg, name = plan.names.resource_group, plan.names.hdinsight_cluster
    try:
        hdinsight = HDInsightManagementClient(credential, subscription, **dict(client_options or {}))
        existing = arm.get_or_none(lambda: hdinsight.clusters.get(rg, name))
        if existing is None:
            return StepResult(HDINSIGHT_CLUSTER, name, "deleted", "not there")
        if not arm.is_ours(existing, plan.config.tag_value):
            why = f"does not carry the tag {TAG_KEY}={plan.config.tag_value}; not deleted"
            return arm.refusal(plan, HDINSIGHT_CLUSTER, name, why)
        report(progress, StepResult(HDINSIGHT_CLUSTER, name, "deleting", "this takes a few minutes"))
        hdinsight.clusters.begin_delete(rg, name).result()
        return StepResult(HDINSIGHT_CLUSTER, name, "deleted")
    except ARM_ERRORS as exc:
        return arm.failure(plan, HDINSIGHT_CLUSTER, name, exc)
