"""A stand-in for an HDInsight cluster's Ambari behind its HTTPS gateway, on 127.0.0.1 (a test fixture).

A real HTTPS server (ThreadingHTTPServer on a free port, in a thread) with a self-signed
certificate made at start (``ca_path`` for the client's ``verify``). It serves
``/api/v1/clusters/{cluster}/...`` for one cluster of an HDInsight 5.1 Kafka shape: 3 KAFKA_BROKER
hosts (the worker nodes wn0..wn2) and 3 ZOOKEEPER_SERVER hosts (zk0..zk2), each with an IP, and
the kafka-env and kafka-broker configurations with Ambari's stack defaults as HDInsight ships them.

Routes, and the documents each follows:

- every route: basic auth (Ambari API v1 index.md "Authentication"), 401 with Ambari's error body
  ``{"status", "message"}`` (index.md "Errors") otherwise; writes (PUT, POST, DELETE) without
  ``X-Requested-By`` get 400 with Ambari's CSRF message.
- ``GET /clusters/C?fields=Clusters/desired_configs``: desired configs with tag, user, version
  (configuration.md "Desired Configuration"; HDInsight hdinsight-hadoop-manage-ambari-rest-api.md
  "Get configuration").
- ``GET /clusters/C/configurations?type=T&tag=G``: ``items[]`` with type, tag, version, Config,
  properties, properties_attributes (configuration.md "Property Sets"; the HDInsight document).
- ``PUT /clusters/C`` with ``Clusters/desired_config`` {type, tag, properties,...}: a new version
  that becomes the desired one; the tag must be new for the type (configuration.md "Cluster";
  HDInsight "Update configuration"). Answer 200 with the new config's versionTag and configs.
  Host components of that config's service get ``stale_configs`` true.
- ``GET /clusters/C/services/S/components/K``: ServiceComponentInfo and host_components[]
  (components-component.md; HDInsight "Get the FQDN of cluster nodes").
- ``GET /clusters/C/hosts/H``: ``Hosts`` with host_name and ip (hosts-host.md; HDInsight "Get the
  internal IP address of cluster nodes").
- ``GET /clusters/C/host_components?HostRoles/component_name=K``: items[].HostRoles with state and
  stale_configs (index.md "Query Predicates"; host-components.md).
- ``GET /clusters/C/services/S``: ServiceInfo with state and maintenance_state (services-service.md).
- ``PUT /clusters/C/services/S``: ``Body/ServiceInfo/maintenance_state`` answers 200;
  ``Body/ServiceInfo/state`` INSTALLED or STARTED answers 202 with ``{"href", "Requests": {"id",
  "status": "Accepted"}}`` (update-service.md, index.md "Asynchronous Response", HDInsight
  "Restart a service component"), or 200 without a body when the service is already so.
- ``GET /clusters/C/requests/{id}``: ``Requests`` with request_status and progress_percent,
  PENDING, then IN_PROGRESS, then COMPLETED over ``polls`` polls; ``fields=tasks/Tasks/*`` adds
  the tasks with host_name, role, command, status, stderr (index.md "Asynchronous Response",
  task-resources.md). The href names the head node's internal address, as HDInsight's does.

- ``GET /clusters/C/services/KAFKA/components/KAFKA_BROKER?fields=...`` and
  ``GET /clusters/C/hosts/H/host_components/KAFKA_BROKER?fields=...``: Kafka's metrics as Ambari's
  KAFKA ``metrics.json`` names them (``metrics/kafka/server/BrokerTopicMetrics/AllTopicsMessagesInPerSec/
  1MinuteRate`` and the BytesIn one; all topics only: Ambari defines no per-topic path), point in
  time (a number) or temporal with ``[start,end,step]`` (``[[value, epoch s], ...]``, one point a
  minute as the Ambari Metrics sink reports) (index.md "Partial Response", "Temporal Metrics").
  The component level sums the brokers (Ambari's aggregate over hosts); a property Ambari does not
  define answers 400 "not supported" (index.md "Errors"). ``host_components/HostRoles/state`` in
  ``fields`` adds each broker's state. Scripted with :meth:`AmbariStandIn.set_topic_rate` (per
  topic and broker), ``broker_states`` (per host) and ``metrics_available`` (False: Ambari Metrics
  has no data, the answer has no ``metrics``). ``hang_s`` makes every answer wait (a stuck Ambari).

Faults: :meth:`AmbariStandIn.fail_request` makes the next request for a state end FAILED with one
task FAILED on a given host. Every call is recorded (method, path, query, body) in ``calls``.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.standins.https import HttpsServer

USER = "admin"
DOMAIN = "x3k7q2rvmbte1fjw5n0apdcu4h.cx.internal.cloudapp.net"  # HDInsight's internal DNS suffix shape
HEAD_NODE_HREF = "http://10.0.0.21:8080"  # what HDInsight's Ambari puts in hrefs (the head node's address)

# The KAFKA_BROKER metrics served (Ambari's common-services/KAFKA metrics.json): path -> which figure.
_TOPIC_METRICS = "metrics/kafka/server/BrokerTopicMetrics/"
KAFKA_METRICS = {
    _TOPIC_METRICS + "AllTopicsMessagesInPerSec/1MinuteRate": 0,  # messages/s, all topics
    _TOPIC_METRICS + "AllTopicsBytesInPerSec/1MinuteRate": 1,  # bytes/s, all topics
}
SINK_PERIOD_S = 60  # the Ambari Metrics sink reports Kafka's metrics once a minute
_FIELD = re.compile(r"([^,\[\]]+)(?:\[([^\]]*)\])?")

# The kafka-env template: Ambari's stack default (common-services/KAFKA/.../kafka-env.xml, "content").
KAFKA_ENV_CONTENT = """
#!/bin/bash

# Set KAFKA specific environment variables here.

# The java implementation to use.
export JAVA_HOME={{java64_home}}
export PATH=$PATH:$JAVA_HOME/bin
export PID_DIR={{kafka_pid_dir}}
export LOG_DIR={{kafka_log_dir}}
export KAFKA_KERBEROS_PARAMS={{kafka_kerberos_params}}
# Add kafka sink to classpath and related depenencies
if [ -e "/usr/lib/ambari-metrics-kafka-sink/ambari-metrics-kafka-sink.jar" ]; then
  export CLASSPATH=$CLASSPATH:/usr/lib/ambari-metrics-kafka-sink/ambari-metrics-kafka-sink.jar
  export CLASSPATH=$CLASSPATH:/usr/lib/ambari-metrics-kafka-sink/lib/*
fi
if [ -f /etc/kafka/conf/kafka-ranger-env.sh ]; then
. /etc/kafka/conf/kafka-ranger-env.sh
fi
"""


def _kafka_broker(zookeepers: list[str]) -> dict[str, str]:
    # An excerpt of kafka-broker as HDInsight sets it (listeners on 9092, ZooKeeper on the zk nodes).
    return {
        "listeners": "PLAINTEXT://localhost:9092",
        "zookeeper.connect": ",".join(f"{host}:2181" for host in zookeepers),
        "log.dirs": "/kafka-logs/0,/kafka-logs/1",
        "auto.create.topics.enable": "false",
        "default.replication.factor": "3",
        "num.partitions": "8",
        "offsets.topic.replication.factor": "3",
        "log.retention.hours": "168",
        "num.network.threads": "3",
    }


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # after /api/v1/clusters/{cluster}
    query: dict[str, str]
    body: Any


@dataclass
class _Request:
    id: int
    context: str
    command: str  # STOP or START
    state: str  # the service state it brings
    polls_left: int
    polls: int
    fail_host: str | None = None
    status: str = "PENDING"
    tasks: list[dict[str, Any]] = field(default_factory=list)


class AmbariStandIn:
    def __init__(self, cluster: str, password: str, *, polls: int = 3, kafka_state: str = "STARTED") -> None:
        self.cluster = cluster
        self.password = password  # a test value
        self.polls = polls
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(101)
        short = cluster[:8]
        self.brokers = {f"wn{i}-{short}.{DOMAIN}": f"10.0.0.{12 + i}" for i in range(3)}
        self.zookeepers = {f"zk{i}-{short}.{DOMAIN}": f"10.0.0.{4 + i}" for i in range(3)}
        self.kafka_state = kafka_state
        self.broker_states: dict[str, str] = {}  # host -> state, over kafka_state (a broker stopped alone)
        # host -> topic -> (messages/s, bytes/s): what each broker's BrokerTopicMetrics measure
        self.topic_rates: dict[str, dict[str, tuple[float, float]]] = {host: {} for host in self.brokers}
        self.metrics_available = True  # False: Ambari Metrics holds no data (its collector is down)
        self.hang_s = 0.0  # > 0: every request waits this long before its answer (a stuck Ambari behind the gateway)
        self.maintenance_state = "OFF"
        self.stale: set[str] = set()  # broker hosts running older configurations
        self.requests: dict[int, _Request] = {}
        self.fail_next: dict[str, str] = {}  # state -> host whose task fails
        # (type, tag) -> config; type -> desired tag
        self.configs: dict[tuple[str, str], dict[str, Any]] = {}
        self.desired: dict[str, str] = {}
        self._versions: dict[str, int] = {}
        self._store("kafka-env", "TOPOLOGY_RESOLVED", self._kafka_env_defaults(), {})
        self._store("kafka-broker", "TOPOLOGY_RESOLVED", _kafka_broker(list(self.zookeepers)), {})
        self._store("zoo.cfg", "TOPOLOGY_RESOLVED", {"clientPort": "2181"}, {})
        self._https = HttpsServer(_handler(self), "ambari-standin")
        self.ca_path = self._https.ca_path

    @staticmethod
    def _kafka_env_defaults() -> dict[str, str]:
        return {
            "content": KAFKA_ENV_CONTENT,
            "kafka_log_dir": "/var/log/kafka",
            "kafka_pid_dir": "/var/run/kafka",
            "kafka_user": "kafka",
            "kafka_user_nofile_limit": "128000",
            "kafka_user_nproc_limit": "65536",
            "is_supported_kafka_ranger": "true",
        }

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._https.port)

    @property
    def base_url(self) -> str:
        """The gateway URL (what https://CLUSTER.azurehdinsight.net is for a real cluster)."""
        return f"https://{self.host}:{self.port}"

    def __enter__(self) -> AmbariStandIn:
        self._https.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._https.stop()

    # --- for tests ------------------------------------------------------------------------------

    def fail_request(self, state: str, host: str) -> None:
        """The next request that brings KAFKA to ``state`` ends FAILED, its task on ``host`` FAILED."""
        with self._lock:
            self.fail_next[state] = host

    def set_topic_rate(self, topic: str, messages_per_s: float, bytes_per_s: float, broker: str | None = None) -> None:
        """What Kafka measures for ``topic``: on ``broker``, or spread evenly over every broker."""
        with self._lock:
            hosts = [broker] if broker is not None else list(self.brokers)
            for host in hosts:
                share = 1 if broker is not None else len(hosts)
                self.topic_rates[host][topic] = (messages_per_s / share, bytes_per_s / share)

    def broker_state(self, host: str) -> str:
        return self.broker_states.get(host, self.kafka_state)

    def metric_calls(self) -> list[Call]:
        return [call for call in self.calls if "metrics/" in call.query.get("fields", "")]

    def writes(self) -> list[Call]:
        return [call for call in self.calls if call.method != "GET"]

    def properties(self, kind: str) -> dict[str, str]:
        """The desired configuration's properties of a type."""
        return self.configs[(kind, self.desired[kind])]["properties"]

    # --- the server's logic (called under the lock) ---------------------------------------------

    def _store(self, kind: str, tag: str, properties: dict[str, str], attributes: dict[str, Any]) -> dict[str, Any]:
        version = self._versions.get(kind, 0) + 1
        self._versions[kind] = version
        config = {
            "type": kind,
            "tag": tag,
            "version": version,
            "Config": {"cluster_name": self.cluster, "stack_id": "HDP-5.1"},
            "properties": copy.deepcopy(properties),
            "properties_attributes": copy.deepcopy(attributes),
        }
        self.configs[(kind, tag)] = config
        self.desired[kind] = tag
        return config

    def _href(self, path: str) -> str:
        return f"{HEAD_NODE_HREF}/api/v1/clusters/{self.cluster}{path}"

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.calls.append(Call(method, path, query, body))
        if path in ("", "/"):
            return self._cluster(method, query, body)
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if parts == ["configurations"] and method == "GET":
            return self._configurations(query)
        if len(parts) == 4 and parts[0] == "services" and parts[2] == "components" and method == "GET":
            return self._component(parts[1], parts[3], query)
        if len(parts) == 2 and parts[0] == "services":
            return self._service(method, parts[1], body)
        if len(parts) == 2 and parts[0] == "hosts" and method == "GET":
            return self._host(parts[1])
        if len(parts) == 4 and parts[0] == "hosts" and parts[2] == "host_components" and method == "GET":
            return self._host_component(parts[1], parts[3], query)
        if parts == ["host_components"] and method == "GET":
            return self._host_components(query)
        if len(parts) == 2 and parts[0] == "requests" and method == "GET" and parts[1].isdigit():
            return self._request(int(parts[1]), query)
        return 404, _error(404, f"The requested resource doesn't exist: {method} {path}")

    def _cluster(self, method: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET":
            desired = {
                kind: {"tag": tag, "user": USER, "version": self.configs[(kind, tag)]["version"]}
                for kind, tag in self.desired.items()
            }
            return 200, {
                "href": self._href(""),
                "Clusters": {"cluster_name": self.cluster, "version": "HDP-5.1", "desired_configs": desired},
            }
        if method != "PUT":
            return 405, _error(405, f"{method} is not allowed here")
        desired = (body or {}).get("Clusters", {}).get("desired_config") if isinstance(body, dict) else None
        if not isinstance(desired, dict) or not {"type", "tag", "properties"} <= desired.keys():
            return 400, _error(400, "The properties [Clusters/desired_config] must have type, tag and properties.")
        kind, tag = desired["type"], desired["tag"]
        if (kind, tag) in self.configs:
            return 400, _error(400, f"Configuration with tag '{tag}' exists for '{kind}'")
        allowed = {"type", "tag", "properties", "properties_attributes", "service_config_version_note"}
        unknown = sorted(set(desired) - allowed)
        if unknown:
            return 400, _error(400, f"The properties {unknown} specified in the request are not supported.")
        config = self._store(kind, tag, desired["properties"], desired.get("properties_attributes") or {})
        if kind.startswith("kafka"):
            self.stale = set(self.brokers)
        return 200, {
            "resources": [
                {
                    "href": self._href(""),
                    "configurations": [
                        {
                            "clusterName": self.cluster,
                            "type": kind,
                            "versionTag": tag,
                            "version": config["version"],
                            "configs": config["properties"],
                            "serviceConfigVersionNote": desired.get("service_config_version_note"),
                        }
                    ],
                }
            ]
        }

    def _configurations(self, query: dict[str, str]) -> tuple[int, Any]:
        kind, tag = query.get("type"), query.get("tag")
        items = [
            {"href": self._href(f"/configurations?type={k}&tag={t}"), **copy.deepcopy(config)}
            for (k, t), config in self.configs.items()
            if (kind is None or k == kind) and (tag is None or t == tag)
        ]
        return 200, {"href": self._href("/configurations"), "items": items}

    def _metrics(self, fields: str, hosts: list[str], resource: str) -> tuple[dict[str, Any] | None, str | None]:
        """The ``metrics`` object for the ``metrics/...`` entries of ``fields`` summed over ``hosts``;
        or the 400 message naming properties Ambari does not define."""
        wanted = [(m.group(1).strip(), m.group(2)) for m in _FIELD.finditer(fields)]
        wanted = [(path, span) for path, span in wanted if path.startswith("metrics/")]
        unknown = sorted(path for path, _ in wanted if path not in KAFKA_METRICS)
        if unknown:
            return None, (
                f"The properties {unknown} specified in the request or predicate are not supported for the "
                f"resource type {resource}."
            )
        if not wanted or not self.metrics_available:
            return None, None
        metrics: dict[str, Any] = {}
        now = time.time()
        for path, span in wanted:
            figure = KAFKA_METRICS[path]
            value = sum(rates[figure] for host in hosts for rates in self.topic_rates.get(host, {}).values())
            if span is None:
                answer: Any = value
            else:
                bounds = [part.strip() for part in span.split(",")]
                start = int(bounds[0])
                end = int(bounds[1]) if len(bounds) > 1 and bounds[1] else int(now)
                end = min(end, int(now))
                newest = end - end % SINK_PERIOD_S  # the sink's last report in the window
                answer = [[value, at] for at in range(newest, start - 1, -SINK_PERIOD_S)][::-1]
            node = metrics
            names = path.split("/")[1:]
            for name in names[:-1]:
                node = node.setdefault(name, {})
            node[names[-1]] = answer
        return metrics, None

    def _host_component(self, host: str, component: str, query: dict[str, str]) -> tuple[int, Any]:
        if component != "KAFKA_BROKER" or host not in self.brokers:
            return 404, _error(404, f"The requested resource doesn't exist: HostComponent not found, {component}")
        metrics, refused = self._metrics(query.get("fields", ""), [host], "HostComponent")
        if refused:
            return 400, _error(400, refused)
        answer: dict[str, Any] = {
            "href": self._href(f"/hosts/{host}/host_components/{component}"),
            "HostRoles": {
                "cluster_name": self.cluster,
                "component_name": component,
                "host_name": host,
                "state": self.broker_state(host),
            },
        }
        if metrics is not None:
            answer["metrics"] = metrics
        return 200, answer

    def _component(self, service: str, component: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        hosts = {("KAFKA", "KAFKA_BROKER"): self.brokers, ("ZOOKEEPER", "ZOOKEEPER_SERVER"): self.zookeepers}
        found = hosts.get((service, component))
        if found is None:
            return 404, _error(404, f"The requested resource doesn't exist: ServiceComponent not found, {component}")
        fields = (query or {}).get("fields", "")
        if fields and component == "KAFKA_BROKER":
            return self._kafka_component(service, component, fields)
        return 200, {
            "href": self._href(f"/services/{service}/components/{component}"),
            "ServiceComponentInfo": {
                "cluster_name": self.cluster,
                "component_name": component,
                "service_name": service,
            },
            "host_components": [
                {
                    "href": self._href(f"/hosts/{host}/host_components/{component}"),
                    "HostRoles": {"cluster_name": self.cluster, "component_name": component, "host_name": host},
                }
                for host in found
            ],
        }

    def _kafka_component(self, service: str, component: str, fields: str) -> tuple[int, Any]:
        # Partial response: only what ``fields`` asks for, and the resource's identifying fields.
        metrics, refused = self._metrics(fields, list(self.brokers), "Component")
        if refused:
            return 400, _error(400, refused)
        with_state = "host_components/HostRoles/state" in fields or "host_components/*" in fields
        answer: dict[str, Any] = {
            "href": self._href(f"/services/{service}/components/{component}?fields={fields}"),
            "ServiceComponentInfo": {
                "cluster_name": self.cluster,
                "component_name": component,
                "service_name": service,
            },
        }
        if metrics is not None:
            answer["metrics"] = metrics
        if "host_components" in fields:
            answer["host_components"] = [
                {
                    "href": self._href(f"/hosts/{host}/host_components/{component}"),
                    "HostRoles": {
                        "cluster_name": self.cluster,
                        "component_name": component,
                        "host_name": host,
                        **({"state": self.broker_state(host)} if with_state else {}),
                    },
                }
                for host in self.brokers
            ]
        return 200, answer

    def _host(self, host: str) -> tuple[int, Any]:
        ip = self.brokers.get(host) or self.zookeepers.get(host)
        if ip is None:
            return 404, _error(404, f"The requested resource doesn't exist: Host not found, hostName={host}")
        return 200, {
            "href": self._href(f"/hosts/{host}"),
            "Hosts": {"cluster_name": self.cluster, "host_name": host, "ip": ip, "host_state": "HEALTHY"},
        }

    def _host_components(self, query: dict[str, str]) -> tuple[int, Any]:
        component = query.get("HostRoles/component_name")
        items = []
        if component in (None, "KAFKA_BROKER"):
            for host in self.brokers:
                items.append(
                    {
                        "href": self._href(f"/hosts/{host}/host_components/KAFKA_BROKER"),
                        "HostRoles": {
                            "cluster_name": self.cluster,
                            "component_name": "KAFKA_BROKER",
                            "host_name": host,
                            "state": self.broker_state(host),
                            "stale_configs": host in self.stale,
                        },
                    }
                )
        return 200, {"href": self._href("/host_components"), "items": items}

    def _service(self, method: str, service: str, body: Any) -> tuple[int, Any]:
        if service not in ("KAFKA", "ZOOKEEPER"):
            return 404, _error(404, f"The requested resource doesn't exist: Service not found, serviceName={service}")
        if method == "GET":
            state = self.kafka_state if service == "KAFKA" else "STARTED"
            return 200, {
                "href": self._href(f"/services/{service}"),
                "ServiceInfo": {
                    "cluster_name": self.cluster,
                    "service_name": service,
                    "state": state,
                    "maintenance_state": self.maintenance_state if service == "KAFKA" else "OFF",
                },
            }
        if method != "PUT" or service != "KAFKA":
            return 405, _error(405, f"{method} is not allowed here")
        info = (body or {}).get("Body", {}).get("ServiceInfo", {}) if isinstance(body, dict) else {}
        if "maintenance_state" in info:
            if info["maintenance_state"] not in ("ON", "OFF"):
                return 400, _error(400, f"Invalid maintenance_state {info['maintenance_state']!r}")
            self.maintenance_state = info["maintenance_state"]
            return 200, None
        state = info.get("state")
        if state not in ("INSTALLED", "STARTED"):
            return 400, _error(400, f"Invalid desired state {state!r} for service KAFKA")
        if state == self.kafka_state:
            return 200, None  # nothing to do: Ambari makes no request
        request = _Request(
            id=next(self._ids),
            context=str((body.get("RequestInfo") or {}).get("context", "")),
            command="STOP" if state == "INSTALLED" else "START",
            state=state,
            polls_left=self.polls,
            polls=self.polls,
            fail_host=self.fail_next.pop(state, None),
        )
        request.tasks = [
            {
                "id": request.id * 10 + index,
                "request_id": request.id,
                "cluster_name": self.cluster,
                "host_name": host,
                "role": "KAFKA_BROKER",
                "command": request.command,
                "status": "PENDING",
                "exit_code": 999,
                "stderr": "",
            }
            for index, host in enumerate(self.brokers)
        ]
        self.requests[request.id] = request
        return 202, {
            "href": self._href(f"/requests/{request.id}"),
            "Requests": {"id": request.id, "status": "Accepted"},
        }

    def _advance(self, request: _Request) -> None:
        if request.status in ("COMPLETED", "FAILED"):
            return
        request.polls_left -= 1
        if request.polls_left > 0:
            request.status = "IN_PROGRESS"
            for task in request.tasks:
                task["status"] = "IN_PROGRESS"
            return
        failed = request.fail_host is not None
        for task in request.tasks:
            if task["host_name"] == request.fail_host:
                task.update(
                    status="FAILED",
                    exit_code=1,
                    stderr="resource_management.core.exceptions.ExecutionFailed: Execution of "
                    "'/usr/hdp/current/kafka-broker/bin/kafka start' returned 1.",
                )
            else:
                task.update(status="COMPLETED", exit_code=0)
        request.status = "FAILED" if failed else "COMPLETED"
        if not failed:
            self.kafka_state = request.state
            if request.state == "STARTED":
                self.stale.clear()
        elif request.state == "STARTED":
            self.kafka_state = "INSTALLED"  # one broker down: Ambari shows the service as not started

    def _request(self, request_id: int, query: dict[str, str]) -> tuple[int, Any]:
        request = self.requests.get(request_id)
        if request is None:
            return 404, _error(
                404, f"The requested resource doesn't exist: Request resource doesn't exist: {request_id}"
            )
        self._advance(request)
        done = request.polls - request.polls_left
        percent = 100.0 if request.status in ("COMPLETED", "FAILED") else 100.0 * done / request.polls
        answer: dict[str, Any] = {
            "href": self._href(f"/requests/{request_id}"),
            "Requests": {
                "id": request_id,
                "cluster_name": self.cluster,
                "request_context": request.context,
                "request_status": request.status,
                "progress_percent": percent,
            },
        }
        if "tasks" in query.get("fields", ""):
            answer["tasks"] = [
                {"href": self._href(f"/requests/{request_id}/tasks/{task['id']}"), "Tasks": dict(task)}
                for task in request.tasks
            ]
        return 200, answer


def _error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "message": message}


def _handler(standin: AmbariStandIn) -> type[BaseHTTPRequestHandler]:
    prefix = f"/api/v1/clusters/{standin.cluster}"

    def expected() -> str:  # read at each request: a test may change the password
        return "Basic " + base64.b64encode(f"{USER}:{standin.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK wait

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            if standin.hang_s > 0:
                time.sleep(standin.hang_s)
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            if self.headers.get("Authorization") != expected():
                with standin._lock:
                    standin.calls.append(Call(self.command, parts.path, query, body))
                self._answer(
                    401, _error(401, "Authentication required"), {"WWW-Authenticate": 'Basic realm="AuthFilter"'}
                )
                return
            if self.command != "GET" and not self.headers.get("X-Requested-By"):
                with standin._lock:
                    standin.calls.append(Call(self.command, parts.path, query, body))
                self._answer(400, _error(400, "CSRF protection is turned on. X-Requested-By HTTP header is required."))
                return
            if parts.path != prefix and not parts.path.startswith(prefix + "/"):
                name = parts.path.removeprefix("/api/v1/clusters/").split("/")[0]
                self._answer(
                    404, _error(404, f"The requested resource doesn't exist: Cluster not found, clusterName={name}")
                )
                return
            with standin._lock:
                status, answer = standin.handle(self.command, parts.path[len(prefix) :], query, body)
            self._answer(status, answer)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    return Handler
