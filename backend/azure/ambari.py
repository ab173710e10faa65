"""Kafka on HDInsight through Ambari's REST API over the cluster's HTTPS gateway: broker and ZooKeeper
hosts, IP advertising (so a peered network can reach the brokers), Kafka restarted. The password is a
SecretStr that goes into the Authorization header only. The documents followed:
docs/azure-design.md ("Kafka through Ambari").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from pydantic import SecretStr

from backend.azure.arm import StepResult

KAFKA = "KAFKA"
KAFKA_BROKER = "KAFKA_BROKER"
ZOOKEEPER = "ZOOKEEPER"
ZOOKEEPER_SERVER = "ZOOKEEPER_SERVER"
KAFKA_ENV = "kafka-env"
KAFKA_BROKER_CONFIG = "kafka-broker"
ZOOKEEPER_PORT = 2181

# The lines HDInsight's "Configure Kafka for IP advertising" appends to the kafka-env template, verbatim.
IP_ADVERTISING_LINES: tuple[str, ...] = (
    "# Configure Kafka to advertise IP addresses instead of FQDN",
    "IP_ADDRESS=$(hostname -i)",
    "echo advertised.listeners=$IP_ADDRESS",
    "sed -i.bak -e '/advertised/{/advertised@/!d;}' /usr/hdp/current/kafka-broker/conf/server.properties",
    'echo "advertised.listeners=PLAINTEXT://$IP_ADDRESS:9092" >> /usr/hdp/current/kafka-broker/conf/server.properties',
)
LISTENERS = "PLAINTEXT://0.0.0.0:9092"  # listen on all interfaces, as the same document says
CONFIG_NOTE = "tweetstream wizard: Kafka advertises broker IP addresses (HDInsight: Configure Kafka for IP advertising)"

# Request and task states that end a request badly (task-resources.md; SKIPPED_FAILED is Ambari's too).
FAILED_STATES = ("FAILED", "ABORTED", "TIMEDOUT", "SKIPPED_FAILED")
LOGIN_REFUSED = "the cluster's gateway refused the login: check the cluster login (user admin) and its password"


class AmbariError(RuntimeError):
    """An Ambari call that failed; ``status`` is the HTTP status (None when no answer came)."""

    def __init__(
        self, message: str, status: int | None = None, *, host: str | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.host = host  # the host of a failed task, when Ambari names one
        self.unreachable = unreachable  # no answer from the gateway at all


# --- pure logic -----------------------------------------------------------------------------------


def has_ip_advertising(content: str) -> bool:
    """Whether a kafka-env template holds every documented IP advertising line, in order."""
    lines = [line.strip() for line in content.splitlines()]
    position = 0
    for wanted in IP_ADVERTISING_LINES:
        try:
            position = lines.index(wanted, position) + 1
        except ValueError:
            return False
    return True


def with_ip_advertising(content: str) -> str:
    """The kafka-env template with the documented lines appended at its bottom (unchanged if there)."""
    if has_ip_advertising(content):
        return content
    base = content.rstrip("\n")
    return base + "\n" + "\n".join(IP_ADVERTISING_LINES) + "\n"


def join_addresses(ips: Mapping[str, str], port: int) -> str:
    """``ip:port,...`` of the hosts' IP addresses, sorted numerically so the string is stable."""

    def key(ip: str) -> tuple[int, ...]:
        return tuple(int(part) for part in ip.split(".")) if ip.replace(".", "").isdigit() else (1 << 16,)

    return ",".join(f"{ip}:{port}" for ip in sorted(set(ips.values()), key=key))


def gateway_url(cluster: str) -> str:
    """The HTTPS gateway of an HDInsight cluster, where Ambari answers."""
    return f"https://{cluster}.azurehdinsight.net"


def _scrub(text: str, secret: SecretStr) -> str:
    value = secret.get_secret_value()
    return text.replace(value, "***") if value else text


# --- the client -----------------------------------------------------------------------------------


class Ambari:
    """Ambari of one HDInsight cluster, through its HTTPS gateway."""

    def __init__(
        self,
        gateway_url: str,
        cluster: str,
        user: str,
        password: SecretStr,
        *,
        verify: str | bool = True,
        timeout_s: float = 30,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.cluster = cluster  # case-sensitive in the path (HDInsight's Ambari REST document)
        self.user = user
        self._password = password
        self._verify = verify
        self._timeout_s = timeout_s
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"Ambari(gateway_url={self.gateway_url!r}, cluster={self.cluster!r}, user={self.user!r})"

    @property
    def base(self) -> str:
        return f"{self.gateway_url}/api/v1/clusters/{self.cluster}"

    # --- HTTP -------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        url = self.base + path
        headers = {"Accept": "application/json"}
        if method != "GET":
            headers["X-Requested-By"] = "ambari"  # Ambari's CSRF check refuses writes without it
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                auth=(self.user, self._password.get_secret_value()),
                verify=self._verify,
                timeout=self._timeout_s,
            )
        except requests.exceptions.SSLError as exc:
            raise AmbariError(
                f"the TLS connection to the cluster's gateway {self.gateway_url} failed: its certificate was not "
                f"trusted ({type(exc).__name__}); check the gateway URL",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise AmbariError(
                f"could not reach the cluster's gateway {self.gateway_url} ({type(exc).__name__}): check the cluster "
                f"name {self.cluster!r}, that the HDInsight cluster finished provisioning and is running, and that "
                "this machine can open HTTPS connections to it (proxy, firewall)",
                unreachable=True,
            ) from None
        if response.status_code in (401, 403):
            raise AmbariError(LOGIN_REFUSED, response.status_code)
        if response.status_code >= 400:
            raise AmbariError(self._message(method, path, response), response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AmbariError(
                f"Ambari answered {method} {path} with something that is not JSON (HTTP {response.status_code})",
                response.status_code,
            ) from None

    def _message(self, method: str, path: str, response: requests.Response) -> str:
        try:
            detail = str(response.json().get("message") or "")
        except (ValueError, AttributeError):
            detail = response.text[:300]
        text = f"Ambari answered {method} {path or '/'} with HTTP {response.status_code}"
        if response.status_code == 404 and "Cluster not found" in detail:  # Ambari's words (index.md, Errors)
            text = (
                f"the cluster {self.cluster!r} was not found at {self.gateway_url}: check the cluster name (HTTP 404)"
            )
        return _scrub(f"{text}: {detail}" if detail else text, self._password)

    # --- hosts ------------------------------------------------------------------------------------

    def _component_hosts(self, service: str, component: str) -> list[str]:
        answer = self._call("GET", f"/services/{service}/components/{component}")
        hosts = [item["HostRoles"]["host_name"] for item in answer.get("host_components", [])]
        return sorted(hosts)

    def broker_hosts(self) -> list[str]:
        """The hosts of the KAFKA_BROKER component (the worker nodes)."""
        return self._component_hosts(KAFKA, KAFKA_BROKER)

    def zookeeper_hosts(self) -> list[str]:
        """The hosts of the ZOOKEEPER_SERVER component."""
        return self._component_hosts(ZOOKEEPER, ZOOKEEPER_SERVER)

    def host_ips(self, hosts: list[str]) -> dict[str, str]:
        """Each host's internal IP address (``Hosts/ip``)."""
        ips: dict[str, str] = {}
        for host in hosts:
            answer = self._call("GET", f"/hosts/{host}", params={"fields": "Hosts/ip"})
            ips[host] = answer["Hosts"]["ip"]
        return ips

    def bootstrap_servers(self, port: int = 9092) -> str:
        """``ip:9092,...`` of the brokers, sorted: what a client in a peered network connects to."""
        return join_addresses(self.host_ips(self.broker_hosts()), port)

    def zookeeper_connect(self) -> str:
        """``ip:2181,...`` of the ZooKeeper servers, sorted."""
        return join_addresses(self.host_ips(self.zookeeper_hosts()), ZOOKEEPER_PORT)

    # --- configurations ---------------------------------------------------------------------------

    def _desired_tags(self) -> dict[str, str]:
        answer = self._call("GET", "", params={"fields": "Clusters/desired_configs"})
        configs = answer.get("Clusters", {}).get("desired_configs", {})
        return {kind: value["tag"] for kind, value in configs.items()}

    def _configuration(self, kind: str, tag: str) -> dict[str, Any]:
        answer = self._call("GET", "/configurations", params={"type": kind, "tag": tag})
        items = answer.get("items", [])
        if not items:
            raise AmbariError(f"Ambari has no configuration {kind} with tag {tag!r}", 404)
        return items[0]

    def _current(self) -> dict[str, dict[str, Any]]:
        tags = self._desired_tags()
        found: dict[str, dict[str, Any]] = {}
        for kind in (KAFKA_ENV, KAFKA_BROKER_CONFIG):
            if kind not in tags:
                raise AmbariError(
                    f"the cluster {self.cluster!r} has no {kind} configuration: is it an HDInsight Kafka cluster?", 404
                )
            found[kind] = self._configuration(kind, tags[kind])
        return found

    def ip_advertising_configured(self) -> bool:
        """Whether kafka-env's template has the documented lines and kafka-broker's listeners is 0.0.0.0:9092."""
        current = self._current()
        env = current[KAFKA_ENV].get("properties", {})
        broker = current[KAFKA_BROKER_CONFIG].get("properties", {})
        return has_ip_advertising(env.get("content", "")) and broker.get("listeners") == LISTENERS

    def _put_desired(self, item: dict[str, Any], properties: dict[str, str]) -> None:
        # HDInsight's "Update configuration": the current item without href/version/Config, a new tag.
        tag = f"version{time.time_ns()}"
        desired: dict[str, Any] = {
            "type": item["type"],
            "tag": tag,
            "properties": properties,
            "service_config_version_note": CONFIG_NOTE,
        }
        if item.get("properties_attributes"):
            desired["properties_attributes"] = item["properties_attributes"]
        self._call("PUT", "", body={"Clusters": {"desired_config": desired}})

    def configure_ip_advertising(self) -> bool:
        """Save new kafka-env and kafka-broker versions that make brokers advertise their IPs.

        Only the template's bottom lines and ``listeners`` change; every other property is kept.
        False when both are already so (nothing is written). Kafka needs a restart afterwards.
        """
        current = self._current()
        changed = False
        env_item = current[KAFKA_ENV]
        env = dict(env_item.get("properties", {}))
        content = env.get("content", "")
        if not has_ip_advertising(content):
            env["content"] = with_ip_advertising(content)
            self._put_desired(env_item, env)
            changed = True
        broker_item = current[KAFKA_BROKER_CONFIG]
        broker = dict(broker_item.get("properties", {}))
        if broker.get("listeners") != LISTENERS:
            broker["listeners"] = LISTENERS
            self._put_desired(broker_item, broker)
            changed = True
        return changed

    # --- state ------------------------------------------------------------------------------------

    def kafka_state(self) -> str:
        """The KAFKA service's ``ServiceInfo/state`` (STARTED, INSTALLED, ...)."""
        answer = self._call("GET", f"/services/{KAFKA}", params={"fields": "ServiceInfo/state"})
        return str(answer["ServiceInfo"]["state"])

    def stale_configs(self) -> bool:
        """Whether any KAFKA_BROKER host component runs with configurations older than the desired ones."""
        answer = self._call(
            "GET",
            "/host_components",
            params={"HostRoles/component_name": KAFKA_BROKER, "fields": "HostRoles/stale_configs"},
        )
        return any(item["HostRoles"].get("stale_configs") for item in answer.get("items", []))

    # --- restart ----------------------------------------------------------------------------------

    def _maintenance(self, state: str) -> None:
        self._call(
            "PUT",
            f"/services/{KAFKA}",
            body={
                "RequestInfo": {"context": f"Turn {state.title()} Maintenance Mode for Kafka"},
                "Body": {"ServiceInfo": {"maintenance_state": state}},
            },
        )

    def _set_state(self, state: str, context: str) -> int | None:
        answer = self._call(
            "PUT",
            f"/services/{KAFKA}",
            body={
                "RequestInfo": {
                    "context": context,
                    "operation_level": {"level": "SERVICE", "cluster_name": self.cluster, "service_name": KAFKA},
                },
                "Body": {"ServiceInfo": {"state": state}},
            },
        )
        # 200 without a body: already in that state, nothing to do. 202: a request to follow
        # (by its id: its href names the head node's internal address, not the gateway).
        if not answer or "Requests" not in answer:
            return None
        return int(answer["Requests"]["id"])

    def _failed_task(self, request_id: int) -> tuple[str | None, str | None, str]:
        answer = self._call("GET", f"/requests/{request_id}", params={"fields": "tasks/Tasks/*"})
        for task in answer.get("tasks", []):
            info = task.get("Tasks", {})
            if info.get("status") in FAILED_STATES:
                stderr = str(info.get("stderr") or "").strip().splitlines()
                return info.get("host_name"), info.get("role"), stderr[-1][:300] if stderr else ""
        return None, None, ""

    def _wait(
        self, request_id: int, label: str, progress: Callable[[str], None], deadline: float, poll_s: float
    ) -> None:
        while True:
            answer = self._call(
                "GET",
                f"/requests/{request_id}",
                params={"fields": "Requests/request_status,Requests/progress_percent"},
            )
            info = answer.get("Requests", {})
            status = str(info.get("request_status", "PENDING"))
            percent = float(info.get("progress_percent") or 0)
            progress(f"{label}: {status} {percent:.0f}%")
            if status == "COMPLETED":
                return
            if status in FAILED_STATES:
                host, role, why = self._failed_task(request_id)
                where = f" on {host}" if host else ""
                what = f" ({role} failed{': ' + why if why else ''})" if role else ""
                raise AmbariError(f"{label} ended {status}{where}{what}: Ambari request {request_id}", None, host=host)
            if time.monotonic() > deadline:
                raise AmbariError(f"{label} did not finish in time: Ambari request {request_id} is still {status}")
            time.sleep(poll_s)

    def restart_kafka(
        self,
        progress: Callable[[str], None] | None = None,
        *,
        timeout_s: float = 1800,
        poll_s: float = 5,
    ) -> None:
        """Restart the KAFKA service as HDInsight documents it, waiting for each request.

        Maintenance mode on (so the stop raises no alerts), stop, start, maintenance mode off (also
        when the restart failed). A request ending FAILED, ABORTED or TIMEDOUT raises AmbariError
        naming the failed task's host and role.
        """
        say = progress or (lambda line: None)
        deadline = time.monotonic() + timeout_s
        self._maintenance("ON")
        try:
            for state, label in (("INSTALLED", "Stop Kafka"), ("STARTED", "Start Kafka")):
                context = f"_PARSE_.{'STOP' if state == 'INSTALLED' else 'START'}.{KAFKA}"
                request_id = self._set_state(state, context)
                if request_id is None:
                    say(f"{label}: nothing to do")
                    continue
                self._wait(request_id, label, say, deadline, poll_s)
        except AmbariError:
            with contextlib.suppress(AmbariError):  # the restart's own error is the one to show
                self._maintenance("OFF")
            raise
        self._maintenance("OFF")
        say(f"Kafka: {self.kafka_state()}")


# --- the wizard's step ----------------------------------------------------------------------------

HOSTS_STEP = "ambari.kafka-hosts"
ADVERTISING_STEP = "ambari.ip-advertising"
RESTART_STEP = "ambari.kafka-restart"


def _advice(error: AmbariError, ambari: Ambari, step: str) -> str:
    if error.status in (401, 403):
        return "Enter the cluster login (user admin) and the password set when the cluster was created, then run again."
    if error.unreachable:
        return "Wait until the HDInsight cluster's provisioning has finished, then run again."
    if step == RESTART_STEP:
        where = f" on {error.host}" if error.host else ""
        return (
            f"Open Ambari ({ambari.gateway_url}), Kafka, and look at the failed operation{where}; the configuration "
            "is saved, so running again retries only the restart."
        )
    return "Run again to resume: what is already configured is kept."


def setup_kafka(
    ambari: Ambari, progress: Callable[[StepResult], None] | None = None, *, poll_s: float = 5.0
) -> tuple[list[StepResult], str | None]:
    """Read the hosts, configure IP advertising, restart Kafka if needed; the steps and the bootstrap servers.

    Resume-safe: IP advertising already configured, no stale configs and Kafka STARTED means
    nothing is written and nothing restarted (every step "exists"). The first failed step ends
    the run with a "failed" result carrying the message and what to do.
    """
    results: list[StepResult] = []
    name = ambari.cluster

    def report(result: StepResult) -> None:
        if result.status != "creating":
            results.append(result)
        if progress is not None:
            progress(result)

    def fail(step: str, error: AmbariError) -> None:
        code = f"HTTP {error.status}" if error.status is not None else "AmbariError"
        report(StepResult(step, name, "failed", str(error), code, _advice(error, ambari, step)))

    step = HOSTS_STEP
    try:
        brokers = ambari.host_ips(ambari.broker_hosts())
        zookeepers = ambari.host_ips(ambari.zookeeper_hosts())
        bootstrap = join_addresses(brokers, 9092)
        report(
            StepResult(
                step,
                name,
                "exists",
                f"{len(brokers)} Kafka brokers {bootstrap}; {len(zookeepers)} ZooKeeper servers "
                f"{join_addresses(zookeepers, ZOOKEEPER_PORT)}",
            )
        )

        step = ADVERTISING_STEP
        report(StepResult(step, name, "creating", "kafka-env template and listeners"))
        changed = ambari.configure_ip_advertising()
        detail = f"kafka-env template advertises broker IPs; listeners {LISTENERS}"
        report(StepResult(step, name, "created" if changed else "exists", detail))

        step = RESTART_STEP
        stale = ambari.stale_configs()
        state = ambari.kafka_state()
        if not changed and not stale and state == "STARTED":
            report(StepResult(step, name, "exists", "Kafka STARTED with the current configuration"))
        else:
            reason = "new configuration" if changed or stale else f"Kafka was {state}"
            report(StepResult(step, name, "creating", f"restarting Kafka ({reason})"))
            ambari.restart_kafka(lambda line: report(StepResult(RESTART_STEP, name, "creating", line)), poll_s=poll_s)
            state = ambari.kafka_state()
            if state != "STARTED":
                raise AmbariError(f"Kafka is {state} after the restart, not STARTED")
            report(StepResult(step, name, "created", f"Kafka restarted ({reason}): STARTED"))
    except AmbariError as error:
        fail(step, error)
        return results, None
    return results, bootstrap
