"""Kafka metrics of an HDInsight cluster from Ambari's REST API, through the cluster's HTTPS gateway
(the console cannot reach the private brokers). Cluster-wide rates and broker states come from Ambari;
per-topic end offsets from the optional ``offsets`` callable (sampled by the Spark job). Any failure is a
sample with ``reachable=False`` and a reason; nothing raises. Why and which paths:
docs/azure-design.md ("Kafka metrics from Ambari").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from pydantic import SecretStr

from backend.azure.ambari import Ambari
from backend.kafka.metrics import KafkaSample, PartitionOffsets

KAFKA = "KAFKA"
KAFKA_BROKER = "KAFKA_BROKER"
MESSAGES_IN = "metrics/kafka/server/BrokerTopicMetrics/AllTopicsMessagesInPerSec/1MinuteRate"  # messages/s
BYTES_IN = "metrics/kafka/server/BrokerTopicMetrics/AllTopicsBytesInPerSec/1MinuteRate"  # bytes/s
BROKER_STATE = "host_components/HostRoles/state"
WINDOW_S = 300  # the temporal query's span: a figure older than 5 minutes is no longer "now"
STEP_S = 15  # Ambari's own dashboards ask for 15 s steps
TIMEOUT_S = 3.0  # connect and read, each: a sample never waits long on an unreachable gateway
REFRESH_S = 10.0  # Ambari's figures change once a minute: no need to ask the gateway every second

# (when the offsets were sampled, topic -> partition -> (first offset, next offset))
OffsetsSource = Callable[[], tuple[float | None, dict[str, dict[int, tuple[int, int]]]]]

NO_OFFSETS_SOURCE = (
    "end offsets unknown: Ambari's REST metrics have no per-partition offsets and no offsets source is "
    "set, so lag and per-topic rates cannot be shown"
)


# --- pure logic -----------------------------------------------------------------------------------


def _merged_metrics(answer: Mapping[str, Any]) -> dict[str, Any]:
    # Ambari answers ``"metrics": {...}``; its temporal example (index.md) shows a list of such
    # objects: accept both.
    metrics = answer.get("metrics")
    if isinstance(metrics, dict):
        return metrics
    merged: dict[str, Any] = {}
    if isinstance(metrics, list):
        for part in metrics:
            if isinstance(part, dict):
                merged.update(part)
    return merged


def metric_value(answer: Mapping[str, Any], path: str) -> tuple[float | None, float | None]:
    """``(value, measured at)`` of a ``metrics/...`` path in an Ambari answer.

    A point-in-time value is a number (measured at: None); a temporal one a list of ``[value,
    epoch seconds]``, of which the newest non-null point counts. ``(None, None)`` when the answer
    lacks the metric (Ambari Metrics not running, no data in the window) or holds no number.
    """
    node: Any = {"metrics": _merged_metrics(answer)}
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None, None
        node = node[part]
    if isinstance(node, bool):
        return None, None
    if isinstance(node, int | float):
        return float(node), None
    if isinstance(node, list):
        points = [
            (float(p[0]), float(p[1]))
            for p in node
            if isinstance(p, list | tuple)
            and len(p) == 2
            and isinstance(p[0], int | float)
            and not isinstance(p[0], bool)
            and isinstance(p[1], int | float)
        ]
        if points:
            value, at = max(points, key=lambda point: point[1])
            return value, at
    return None, None


def broker_states(answer: Mapping[str, Any]) -> dict[str, str]:
    """Host -> state of each KAFKA_BROKER host component in a component answer (``UNKNOWN`` if unsaid)."""
    states: dict[str, str] = {}
    for item in answer.get("host_components") or []:
        roles = item.get("HostRoles", {}) if isinstance(item, dict) else {}
        host = roles.get("host_name")
        if host:
            states[str(host)] = str(roles.get("state") or "UNKNOWN")
    return dict(sorted(states.items()))


def component_fields(now: float) -> str:
    """The ``fields`` of one sample: both rates over the last WINDOW_S, and the brokers' states."""
    end = int(now)
    window = f"[{end - WINDOW_S},{end},{STEP_S}]"
    return f"{MESSAGES_IN}{window},{BYTES_IN}{window},{BROKER_STATE}"


def offsets_topics(found: dict[str, dict[int, tuple[int, int]]]) -> dict[str, dict[int, PartitionOffsets]]:
    return {
        topic: {int(partition): PartitionOffsets(int(low), int(high)) for partition, (low, high) in partitions.items()}
        for topic, partitions in sorted(found.items())
        if not topic.startswith("__")
    }


class _Refused(Exception):
    """A call that got no usable answer; the message is the sample's error."""


# --- the source -----------------------------------------------------------------------------------


class AmbariKafkaMetrics:
    """``KafkaMetrics`` of an HDInsight Kafka cluster, from Ambari's REST API on its HTTPS gateway.

    Either the wizard's ``Ambari`` client (its gateway, cluster, login and CA bundle are used; its
    own timeout is not: a metrics call gets ``timeout_s``), or the gateway URL, cluster name, login
    and ``verify`` (a CA bundle's path, or True for the system's).
    """

    def __init__(
        self,
        ambari: Ambari | str,
        cluster: str | None = None,
        user: str = "admin",
        password: SecretStr | None = None,
        *,
        verify: str | bool = True,
        offsets: OffsetsSource | None = None,
        timeout_s: float = TIMEOUT_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        if isinstance(ambari, Ambari):
            gateway_url, cluster, user = ambari.gateway_url, ambari.cluster, ambari.user
            # Ambari keeps its login and CA bundle private; the same cluster login serves both.
            password, verify = ambari._password, ambari._verify
        else:
            gateway_url = ambari
        if cluster is None or password is None:
            raise ValueError("AmbariKafkaMetrics needs an Ambari client, or a gateway URL with cluster and password")
        self.gateway_url = gateway_url.rstrip("/")
        self.cluster = cluster  # case-sensitive in the path
        self.user = user
        self._password = password
        self._verify = verify  # a CA bundle's path, or True for the system's
        self._offsets = offsets
        self._timeout_s = timeout_s
        self._refresh_s = refresh_s
        self._session = requests.Session()
        self._last: KafkaSample | None = None
        self._last_at = 0.0  # time.monotonic() of the last sample

    def __repr__(self) -> str:
        return f"AmbariKafkaMetrics(gateway_url={self.gateway_url!r}, cluster={self.cluster!r}, user={self.user!r})"

    def describe(self) -> str:
        return f"Ambari metrics of HDInsight cluster {self.cluster}"

    def close(self) -> None:
        self._session.close()

    def sample(self) -> KafkaSample:
        """The cluster's rates and brokers (one GET), with the offsets source's topics; never raises.

        A sample younger than ``refresh_s`` is returned again rather than asking the gateway anew.
        """
        if self._last is not None and time.monotonic() - self._last_at < self._refresh_s:
            return self._last
        try:
            sample = self._sample_now()
        except Exception as error:  # never into the Monitor: say what broke
            sample = KafkaSample(
                reachable=False,
                sampled_at=time.time(),
                error=self._scrub(f"reading Ambari's metrics of {self.cluster} failed ({type(error).__name__})"),
            )
        self._last, self._last_at = sample, time.monotonic()
        return sample

    def _sample_now(self) -> KafkaSample:
        now = time.time()
        try:
            answer = self._get(f"/services/{KAFKA}/components/{KAFKA_BROKER}", {"fields": component_fields(now)})
        except _Refused as refused:
            return KafkaSample(reachable=False, sampled_at=now, error=str(refused))
        messages, messages_at = metric_value(answer, MESSAGES_IN)
        bytes_in, bytes_at = metric_value(answer, BYTES_IN)
        measured = [at for at in (messages_at, bytes_at) if at is not None]
        topics, offsets_at, note = self._read_offsets()
        return KafkaSample(
            reachable=True,
            sampled_at=now,
            topics=topics,
            all_messages_in_per_s=messages,
            all_bytes_in_per_s=bytes_in,
            rates_at=max(measured) if measured else None,
            brokers=broker_states(answer),
            offsets_at=offsets_at,
            offsets_note=note,
        )

    def _read_offsets(self) -> tuple[dict[str, dict[int, PartitionOffsets]], float | None, str | None]:
        if self._offsets is None:
            return {}, None, NO_OFFSETS_SOURCE
        try:
            sampled_at, found = self._offsets()
        except Exception as error:
            detail = self._scrub(str(error))[:300]
            return {}, None, f"end offsets could not be read ({type(error).__name__}: {detail}): lag unknown"
        if sampled_at is None or not found:
            return {}, None, "end offsets unknown: the Spark job has not recorded the topics' offsets yet"
        return offsets_topics(found), float(sampled_at), None

    # --- HTTP -------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        value = self._password.get_secret_value()
        return text.replace(value, "***") if value else text

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.gateway_url}/api/v1/clusters/{self.cluster}{path}"
        try:
            response = self._session.get(
                url,
                params=params,
                headers={"Accept": "application/json"},
                auth=(self.user, self._password.get_secret_value()),
                verify=self._verify,
                timeout=(self._timeout_s, self._timeout_s),
            )
        except requests.exceptions.SSLError:
            raise _Refused(
                f"the TLS connection to the cluster's gateway {self.gateway_url} failed: its certificate was not "
                "trusted; check the gateway URL"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise _Refused(
                f"the cluster's gateway {self.gateway_url} accepted the connection but did not answer within "
                f"{self._timeout_s:g} s (ReadTimeout): Ambari may be restarting or overloaded, or this is not the "
                "cluster's gateway; the next sample tries again"
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise _Refused(
                f"could not reach the cluster's gateway {self.gateway_url} within {self._timeout_s:g} s "
                f"({type(exc).__name__}): check that the HDInsight cluster {self.cluster!r} is running and that "
                "this machine can open HTTPS connections to it (proxy, firewall)"
            ) from None
        if response.status_code >= 400:
            raise _Refused(self._explain(response))
        try:
            answer = response.json()
        except ValueError:
            raise _Refused(
                f"Ambari at {self.gateway_url} answered with something that is not JSON (HTTP {response.status_code})"
            ) from None
        if not isinstance(answer, dict):
            raise _Refused(f"Ambari at {self.gateway_url} answered an unexpected JSON shape")
        return answer

    def _explain(self, response: requests.Response) -> str:
        status = response.status_code
        try:
            detail = str(response.json().get("message") or "")
        except (ValueError, AttributeError):
            detail = ""
        if status == 401:
            text = (
                f"the cluster's gateway refused the login (HTTP 401): check the cluster login ({self.user}) and "
                f"the password set when the cluster {self.cluster!r} was created"
            )
        elif status == 403:
            text = (
                f"the cluster login {self.user!r} may not read Ambari's metrics of {self.cluster!r} (HTTP 403): "
                "use the cluster's admin login"
            )
        elif status == 404 and "Cluster not found" in detail:
            text = (
                f"the cluster {self.cluster!r} was not found at {self.gateway_url} (HTTP 404): check the cluster name"
            )
        elif status == 404:
            text = (
                f"the cluster {self.cluster!r} has no Kafka brokers in Ambari (HTTP 404: {detail or 'not found'}): "
                "is it an HDInsight Kafka cluster?"
            )
        else:
            text = f"Ambari's metrics of {self.cluster!r} answered HTTP {status}" + (f": {detail}" if detail else "")
        return self._scrub(text)
