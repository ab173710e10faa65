"""A stand-in for an Azure Databricks workspace's REST API on 127.0.0.1, over HTTPS.

A real HTTPS server (ThreadingHTTPServer on a free port, served from a thread) with a
self-signed certificate made at start (``ca_path``). It accepts only ``Authorization: Bearer
<token>`` with the token it was given (401 otherwise) and records every call with its headers.
Errors are Databricks' body ``{"error_code", "message"}``: 400 INVALID_PARAMETER_VALUE /
INVALID_STATE / RESOURCE_ALREADY_EXISTS, 404 RESOURCE_DOES_NOT_EXIST, 401 for a bad token (the SDK
picks its exception from error_code).

Routes follow the Databricks REST API reference (request and response fields as there), at the
versions databricks-sdk 0.162.0 sends; pages under https://docs.databricks.com/api/:

- ``GET /api/2.0/preview/scim/v2/Me``: the current user (iam "Get current user info"); a
  service principal's userName is its application id.
- Clusters (clusters/v2/): ``GET /api/2.1/clusters/spark-versions`` (list-spark-versions.md:
  ``versions`` of key and name), ``GET .../list`` (list-clusters.md), ``POST .../create``
  (create-cluster.md: spark_version required; answers cluster_id; state PENDING, then RUNNING
  after ``polls`` gets), ``GET .../get`` (get-cluster.md: state, state_message,
  termination_reason {code, type, parameters}), ``POST .../start`` (start-cluster.md: "If the
  cluster is not currently in a TERMINATED state, nothing will happen"), ``POST .../edit``
  (edit-cluster.md: the whole spec; only a RUNNING or TERMINATED cluster, INVALID_STATE otherwise; a
  running cluster restarts),
  ``POST .../restart`` (restart-cluster.md: RESTARTING, then RUNNING; nothing happens unless
  RUNNING), ``POST .../permanent-delete`` (permanent-delete-cluster.md: ``{}``).
- Libraries (cluster-libraries/v2/): ``POST /api/2.0/libraries/install``
  (install-libraries.md), ``GET /api/2.0/libraries/cluster-status`` (cluster-status.md:
  library_statuses with status and messages): PENDING, INSTALLING, INSTALLED (or FAILED), one step
  per poll once the cluster runs; ``POST /api/2.0/libraries/uninstall`` (uninstall-libraries.md:
  the library shows UNINSTALL_ON_RESTART and is gone after the cluster restarts; one not installed
  is ignored).
- Workspace (workspace-objects/v1/): ``POST /api/2.0/workspace/mkdirs`` (mkdirs.md: parents
  too; RESOURCE_ALREADY_EXISTS if a prefix is not a directory), ``POST .../import`` (import.md:
  base64 content; AUTO makes a ``.py`` without the "# Databricks notebook source" header a FILE;
  RESOURCE_ALREADY_EXISTS without overwrite; RESOURCE_DOES_NOT_EXIST without the parent),
  ``GET .../export`` (export.md), ``GET .../get-status`` (get-status.md: ObjectInfo with
  object_type; RESOURCE_DOES_NOT_EXIST), ``GET .../list`` (list.md).
- Secrets (secrets/v1/): ``POST /api/2.0/secrets/scopes/create`` (create-scope.md),
  ``GET .../scopes/list`` (list-scopes.md), ``POST /api/2.0/secrets/put`` (put-secret.md:
  exactly one of string_value, bytes_value; RESOURCE_DOES_NOT_EXIST without the scope).
- Jobs (jobs/v2/): ``POST /api/2.2/jobs/create`` (create-job.md), ``GET .../get`` (get-job.md),
  ``GET .../list`` (list-jobs.md: ``name`` filter, tasks only with ``expand_tasks``),
  ``POST .../reset`` (reset-job.md), ``POST .../delete`` (delete-job.md), ``POST .../run-now``
  (run-now.md; a run past ``max_concurrent_runs`` is QUEUED until the active one ends, as "for jobs
  created with the Jobs API 2.2, queueing is enabled by default" (jobs-api-updates), or SKIPPED
  with MAXIMUM_CONCURRENT_RUNS_REACHED when the job's ``queue.enabled`` is false); runs:
  ``POST .../runs/submit`` (submit-run.md), ``GET .../runs/get``
  (get-run.md: a run with its ``tasks``, each with its own run_id), ``GET .../runs/get-output``
  (get-run-output.md: a task run's id, else INVALID_PARAMETER_VALUE; error, error_trace, and the
  run's stdout in logs, a failed run's too),
  ``POST .../runs/cancel`` (cancel-run.md), ``GET .../runs/list`` (list-runs.md: newest first,
  ``active_only``, ``limit``).
- SQL warehouses and statement execution: added by tests/standins/sql_warehouse.py
  (``install_sql_warehouse``) through ``extra_routes``.

Run life cycle: a submitted run is PENDING, then RUNNING, then TERMINATED SUCCESS over
``polls`` gets; a job's run-now run stays RUNNING until cancelled (a streaming job); cancelling
gives TERMINATING, then TERMINATED CANCELED. :meth:`script_logs` sets what a run prints.
Faults: :meth:`fail_cluster` (the next created cluster ends TERMINATED with a termination_reason),
:meth:`fail_library` (a library installed from then on ends FAILED with messages, until
:meth:`clear_library_faults`), :meth:`fail_run` (runs of a python_file end FAILED with error and
error_trace), ``spark_versions`` (what the workspace offers).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.standins.https import HttpsServer

USER = "00000000-0000-0000-0000-00000000c11e"  # a service principal's application id, as SCIM Me gives it
SPARK_VERSIONS = (
    ("17.3.x-scala2.13", "17.3 LTS (includes Apache Spark 4.0.0, Scala 2.13)"),
    ("18.0.x-scala2.13", "18.0 (includes Apache Spark 4.1.0, Scala 2.13)"),
    ("19.0.x-scala2.13", "19.0 (includes Apache Spark 4.2.0, Scala 2.13)"),
    ("19.0.x-photon-scala2.13", "19.0 Photon (includes Apache Spark 4.2.0, Scala 2.13)"),
)
_SECURITY_MODES = {
    "DATA_SECURITY_MODE_AUTO",
    "DATA_SECURITY_MODE_STANDARD",
    "DATA_SECURITY_MODE_DEDICATED",
    "USER_ISOLATION",
    "SINGLE_USER",
    "NONE",
}
_KIND_ONLY_MODES = {"DATA_SECURITY_MODE_AUTO", "DATA_SECURITY_MODE_STANDARD", "DATA_SECURITY_MODE_DEDICATED"}
_NOTEBOOK_HEADER = b"# Databricks notebook source"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class _Cluster:
    spec: dict[str, Any]
    state: str = "PENDING"
    polls_left: int = 0
    fail_with: dict[str, Any] | None = None
    libraries: list[dict[str, Any]] = field(default_factory=list)  # {"library", "status", "polls", "fails"}


@dataclass
class _Run:
    run_id: int
    task_run_id: int
    run_name: str
    job_id: int | None
    task: dict[str, Any]
    streaming: bool  # a job's run: stays RUNNING until cancelled
    start_time: int
    state: str = "PENDING"
    result: str | None = None
    message: str = "Waiting for cluster"
    gets: int = 0
    cancelled: bool = False
    end_time: int = 0


class DatabricksStandIn:
    def __init__(self, token: str, *, polls: int = 2) -> None:
        self.token = token
        self.polls = polls
        self.calls: list[Call] = []
        self.spark_versions: list[tuple[str, str]] = list(SPARK_VERSIONS)
        self.clusters: dict[str, _Cluster] = {}
        self.files: dict[str, bytes] = {}  # workspace FILE path -> content
        self.notebooks: dict[str, bytes] = {}
        self.folders: set[str] = {"/"}
        self.scopes: dict[str, dict[str, str]] = {}  # scope -> key -> value
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, _Run] = {}
        self._cluster_fault: dict[str, Any] | None = None
        self._library_faults: dict[str, tuple[list[str], str]] = {}
        self._run_faults: dict[str, tuple[str, str]] = {}
        self._script_logs: dict[str, str] = {}
        self._ids = itertools.count(101)
        self._clock = itertools.count(1_767_225_600_000, 1000)  # epoch ms, one second per event
        # More routes, tried in turn when none above matches (tests/standins/sql_warehouse.py adds the
        # SQL warehouse's): each answers (status, body), or None when the path is not its own.
        self.extra_routes: list[Callable[[str, str, dict[str, str], Any], tuple[int, Any] | None]] = []
        self._lock = threading.Lock()
        self.dbfs_root = False  # like a new account's workspace: no DBFS root
        self._https = HttpsServer(_handler(self), "databricks-standin")
        self.ca_path = self._https.ca_path
        self._routes: dict[tuple[str, str], Callable[[dict[str, str], Any], tuple[int, Any]]] = {
            ("GET", "/api/2.0/preview/scim/v2/Me"): self._me,
            ("GET", "/api/2.1/clusters/spark-versions"): self._spark_versions,
            ("GET", "/api/2.1/clusters/list"): self._clusters_list,
            ("POST", "/api/2.1/clusters/create"): self._clusters_create,
            ("GET", "/api/2.1/clusters/get"): self._clusters_get,
            ("POST", "/api/2.1/clusters/start"): self._clusters_start,
            ("POST", "/api/2.1/clusters/edit"): self._clusters_edit,
            ("POST", "/api/2.1/clusters/restart"): self._clusters_restart,
            ("POST", "/api/2.1/clusters/permanent-delete"): self._clusters_delete,
            ("POST", "/api/2.0/libraries/install"): self._libraries_install,
            ("POST", "/api/2.0/libraries/uninstall"): self._libraries_uninstall,
            ("GET", "/api/2.0/libraries/cluster-status"): self._libraries_status,
            ("POST", "/api/2.0/workspace/mkdirs"): self._mkdirs,
            ("POST", "/api/2.0/workspace/import"): self._import,
            ("GET", "/api/2.0/workspace/export"): self._export,
            ("GET", "/api/2.0/workspace/get-status"): self._get_status,
            ("GET", "/api/2.0/workspace/list"): self._list,
            ("POST", "/api/2.0/secrets/scopes/create"): self._scope_create,
            ("GET", "/api/2.0/secrets/scopes/list"): self._scope_list,
            ("POST", "/api/2.0/secrets/put"): self._secret_put,
            ("POST", "/api/2.2/jobs/create"): self._job_create,
            ("GET", "/api/2.2/jobs/get"): self._job_get,
            ("GET", "/api/2.2/jobs/list"): self._job_list,
            ("POST", "/api/2.2/jobs/reset"): self._job_reset,
            ("POST", "/api/2.2/jobs/delete"): self._job_delete,
            ("POST", "/api/2.2/jobs/run-now"): self._run_now,
            ("POST", "/api/2.2/jobs/runs/submit"): self._run_submit,
            ("GET", "/api/2.2/jobs/runs/get"): self._run_get,
            ("GET", "/api/2.2/jobs/runs/get-output"): self._run_output,
            ("POST", "/api/2.2/jobs/runs/cancel"): self._run_cancel,
            ("GET", "/api/2.2/jobs/runs/list"): self._run_list,
        }

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._https.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def __enter__(self) -> DatabricksStandIn:
        self._https.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._https.stop()

    # --- for tests ------------------------------------------------------------------------------

    def fail_cluster(self, code: str, type_: str, parameters: dict[str, str], message: str) -> None:
        """The next created (or started) cluster ends TERMINATED with this termination_reason."""
        self._cluster_fault = {"code": code, "type": type_, "parameters": parameters, "message": message}

    def fail_library(self, label_contains: str, messages: list[str], status: str = "FAILED") -> None:
        """A library whose coordinates or package contain ``label_contains`` ends ``status``: FAILED, or
        SKIPPED (LibraryInstallStatus: the Library Manager decided to skip installing it), with ``messages``."""
        self._library_faults[label_contains] = (messages, status)

    def clear_library_faults(self) -> None:
        """Libraries installed from now on install (one already FAILED stays FAILED, as on Databricks)."""
        self._library_faults.clear()

    def fail_run(self, python_file_contains: str, error: str, error_trace: str) -> None:
        """Runs of a python_file containing this text end TERMINATED FAILED with this output."""
        self._run_faults[python_file_contains] = (error, error_trace)

    def script_logs(self, contains: str, logs: str) -> None:
        """Runs whose python_file or parameters contain ``contains`` print ``logs`` (the stand-in
        runs no code: this is what the real script would print, e.g. a JSON outcome line)."""
        self._script_logs[contains] = logs

    def paths(self) -> list[tuple[str, str]]:
        return [(call.method, call.path) for call in self.calls]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [call.body for call in self.calls if call.method == method and call.path == path]

    # --- dispatch (under the lock) --------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        route = self._routes.get((method, path))
        if route is None:
            for extra in self.extra_routes:
                answer = extra(method, path, query, body)
                if answer is not None:
                    return answer
            return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        if method == "POST" and not isinstance(body, dict):
            return _error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        return route(query, body)

    def _now(self) -> int:
        return next(self._clock)

    # --- clusters -------------------------------------------------------------------------------

    def _me(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"id": "7001", "userName": USER, "displayName": "tweetstream-wizard", "active": True}

    def _spark_versions(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"versions": [{"key": key, "name": name} for key, name in self.spark_versions]}

    def _cluster_view(self, cluster_id: str, cluster: _Cluster) -> dict[str, Any]:
        view = {**cluster.spec, "cluster_id": cluster_id, "state": cluster.state}
        view["state_message"] = {
            "PENDING": "Finding instances for new nodes, acquiring more instances if necessary",
            "RESTARTING": "Restarting Spark",
            "RUNNING": "",
        }.get(cluster.state, view.get("state_message", ""))
        if cluster.state == "TERMINATED" and cluster.fail_with is not None:
            fault = cluster.fail_with
            view["termination_reason"] = {k: fault[k] for k in ("code", "type", "parameters")}
            view["state_message"] = fault["message"]
        return view

    def _cluster(self, cluster_id: Any) -> _Cluster | tuple[int, Any]:
        cluster = self.clusters.get(str(cluster_id))
        if cluster is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return cluster

    def _clusters_list(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"clusters": [self._cluster_view(cid, c) for cid, c in self.clusters.items()]}

    def _clusters_create(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        problem = _check_cluster_spec(body, self.spark_versions)
        if problem:
            return _error(400, "INVALID_PARAMETER_VALUE", problem)
        cluster_id = f"1130-{next(self._ids):06d}-standin"
        spec = json.loads(json.dumps(body))
        self.clusters[cluster_id] = _Cluster(spec, "PENDING", self.polls, self._cluster_fault)
        self._cluster_fault = None
        return 200, {"cluster_id": cluster_id}

    def _clusters_get(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(query.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        if cluster.state == "TERMINATING":
            cluster.state = "TERMINATED"
        elif cluster.state in ("PENDING", "RESTARTING"):
            cluster.polls_left -= 1
            if cluster.polls_left <= 0:
                cluster.state = "TERMINATED" if cluster.fail_with is not None else "RUNNING"
        return 200, self._cluster_view(str(query["cluster_id"]), cluster)

    def _clusters_start(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(body.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        if cluster.state != "TERMINATED":
            return 200, {}  # nothing happens (start-cluster.md)
        cluster.state, cluster.polls_left = "PENDING", self.polls
        cluster.fail_with, self._cluster_fault = self._cluster_fault, None
        _drop_uninstalled(cluster)
        return 200, {}

    def _clusters_restart(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(body.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        if cluster.state == "RUNNING":  # otherwise nothing happens (restart-cluster.md)
            cluster.state, cluster.polls_left = "RESTARTING", self.polls
            _drop_uninstalled(cluster)
        return 200, {}

    def _clusters_edit(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(body.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        if cluster.state not in ("RUNNING", "TERMINATED"):
            return _error(
                400,
                "INVALID_STATE",
                f"Cluster {body['cluster_id']} is in unexpected state {cluster.state}: "
                "only a RUNNING or TERMINATED cluster can be edited.",
            )
        spec = {k: v for k, v in body.items() if k != "cluster_id"}
        problem = _check_cluster_spec(spec, self.spark_versions)
        if problem:
            return _error(400, "INVALID_PARAMETER_VALUE", problem)
        cluster.spec = json.loads(json.dumps(spec))
        if cluster.state == "RUNNING":
            cluster.state, cluster.polls_left = "RESTARTING", self.polls
            _drop_uninstalled(cluster)
        return 200, {}

    def _clusters_delete(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if self.clusters.pop(str(body.get("cluster_id")), None) is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Cluster {body.get('cluster_id')} does not exist")
        return 200, {}

    # --- libraries ------------------------------------------------------------------------------

    def _libraries_install(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(body.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        libraries = body.get("libraries")
        if not isinstance(libraries, list) or not libraries:
            return _error(400, "INVALID_PARAMETER_VALUE", "libraries must be a non-empty list")
        for library in libraries:
            kinds = [k for k in ("jar", "egg", "whl", "pypi", "maven", "cran", "requirements") if k in library]
            if len(kinds) != 1:
                return _error(400, "INVALID_PARAMETER_VALUE", f"A library has exactly one type: {library}")
            if "maven" in library and not library["maven"].get("coordinates"):
                return _error(400, "INVALID_PARAMETER_VALUE", "maven.coordinates is required")
            if "pypi" in library and not library["pypi"].get("package"):
                return _error(400, "INVALID_PARAMETER_VALUE", "pypi.package is required")
            if any(entry["library"] == library for entry in cluster.libraries):
                continue
            text = json.dumps(library)
            fails = next((m for needle, m in self._library_faults.items() if needle in text), None)
            cluster.libraries.append({"library": library, "status": "PENDING", "fails": fails})
        return 200, {}

    def _libraries_uninstall(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster = self._cluster(body.get("cluster_id"))
        if not isinstance(cluster, _Cluster):
            return cluster
        libraries = body.get("libraries")
        if not isinstance(libraries, list) or not libraries:
            return _error(400, "INVALID_PARAMETER_VALUE", "libraries must be a non-empty list")
        for entry in cluster.libraries:
            if entry["library"] in libraries:  # one not on the cluster is ignored
                entry["status"] = "UNINSTALL_ON_RESTART"
        return 200, {}

    def _libraries_status(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        cluster_id = query.get("cluster_id")
        cluster = self._cluster(cluster_id)
        if not isinstance(cluster, _Cluster):
            return cluster
        statuses = []
        for entry in cluster.libraries:
            if cluster.state == "RUNNING":  # installs proceed only on a running cluster
                entry["status"] = {
                    "PENDING": "INSTALLING",
                    "INSTALLING": entry["fails"][1] if entry["fails"] else "INSTALLED",
                }.get(entry["status"], entry["status"])
            status = {"library": entry["library"], "status": entry["status"], "is_library_for_all_clusters": False}
            if entry["status"] in ("FAILED", "SKIPPED"):
                status["messages"] = entry["fails"][0]
            statuses.append(status)
        return 200, {"cluster_id": cluster_id, "library_statuses": statuses}

    # --- workspace ------------------------------------------------------------------------------

    def _object(self, path: str) -> dict[str, Any] | None:
        if path in self.files:
            return {
                "object_type": "FILE",
                "path": path,
                "object_id": abs(hash(path)) % 10**12,
                "size": len(self.files[path]),
            }
        if path in self.notebooks:
            return {
                "object_type": "NOTEBOOK",
                "path": path,
                "language": "PYTHON",
                "object_id": abs(hash(path)) % 10**12,
            }
        if path in self.folders:
            return {"object_type": "DIRECTORY", "path": path, "object_id": abs(hash(path)) % 10**12}
        return None

    def _mkdirs(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        path = body.get("path", "")
        if not path.startswith("/"):
            return _error(400, "INVALID_PARAMETER_VALUE", f"Path ({path}) must be absolute")
        parts = path.rstrip("/").split("/")
        for i in range(2, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in self.files or prefix in self.notebooks:
                return _error(400, "RESOURCE_ALREADY_EXISTS", f"{prefix} exists and is not a directory")
            self.folders.add(prefix)
        return 200, {}

    def _import(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        path, fmt = body.get("path", ""), body.get("format", "SOURCE")
        parent = path.rsplit("/", 1)[0] or "/"
        if parent not in self.folders:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({parent}) does not exist.")
        if fmt not in ("AUTO", "RAW", "SOURCE"):
            return _error(400, "INVALID_PARAMETER_VALUE", f"The stand-in imports AUTO, RAW or SOURCE, not {fmt}")
        if fmt == "SOURCE" and not body.get("language"):
            return _error(400, "INVALID_PARAMETER_VALUE", "To import a single file as SOURCE, set language")
        try:
            content = base64.b64decode(body.get("content", ""), validate=True)
        except ValueError:
            return _error(400, "INVALID_PARAMETER_VALUE", "content is not base64")
        notebook = fmt == "SOURCE" or (fmt == "AUTO" and content.startswith(_NOTEBOOK_HEADER))
        target = path.removesuffix(".py") if notebook else path
        if (target in self.files or target in self.notebooks) and not body.get("overwrite"):
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Path ({target}) already exists.")
        self.files.pop(target, None)
        self.notebooks.pop(target, None)
        (self.notebooks if notebook else self.files)[target] = content
        return 200, {}

    def _export(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        path = query.get("path", "")
        if path in self.files:
            return 200, {"content": base64.b64encode(self.files[path]).decode(), "file_type": path.rsplit(".", 1)[-1]}
        if path in self.notebooks:
            return 200, {"content": base64.b64encode(self.notebooks[path]).decode(), "file_type": "py"}
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")

    def _get_status(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        found = self._object(query.get("path", ""))
        if found is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({query.get('path')}) doesn't exist.")
        return 200, found

    def _list(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        path = query.get("path", "").rstrip("/") or "/"
        if path not in self.folders:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        children = {
            p for p in (*self.files, *self.notebooks, *self.folders) if p.rsplit("/", 1)[0] == path and p != path
        }
        return 200, {"objects": [self._object(p) for p in sorted(children)]}

    # --- secrets --------------------------------------------------------------------------------

    def _scope_create(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        scope = body.get("scope", "")
        if not scope or len(scope) > 128:
            return _error(400, "INVALID_PARAMETER_VALUE", "scope must be 1-128 characters")
        if scope in self.scopes:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!")
        self.scopes[scope] = {}
        return 200, {}

    def _scope_list(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {"scopes": [{"name": name, "backend_type": "DATABRICKS"} for name in self.scopes]}

    def _secret_put(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        scope, key = body.get("scope"), body.get("key", "")
        if scope not in self.scopes:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
        if ("string_value" in body) == ("bytes_value" in body):
            return _error(400, "INVALID_PARAMETER_VALUE", "Exactly one of string_value, bytes_value")
        self.scopes[scope][key] = body.get("string_value") or body.get("bytes_value")
        return 200, {}

    # --- jobs -----------------------------------------------------------------------------------

    def _job(self, job_id: Any) -> dict[str, Any] | tuple[int, Any]:
        job = self.jobs.get(int(job_id)) if str(job_id).isdigit() else None
        if job is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        return job

    def _check_tasks(self, settings: dict[str, Any]) -> tuple[int, Any] | None:
        for task in settings.get("tasks") or []:
            if not task.get("task_key"):
                return _error(400, "INVALID_PARAMETER_VALUE", "task_key is required")
            if task.get("existing_cluster_id") and task["existing_cluster_id"] not in self.clusters:
                return _error(400, "INVALID_PARAMETER_VALUE", f"Cluster {task['existing_cluster_id']} does not exist")
            python = task.get("spark_python_task")
            if python is not None and not python.get("python_file"):
                return _error(400, "INVALID_PARAMETER_VALUE", "spark_python_task.python_file is required")
        return None

    def _job_create(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        problem = self._check_tasks(body)
        if problem:
            return problem
        job_id = next(self._ids)
        settings = {
            "max_concurrent_runs": 1,
            "timeout_seconds": 0,
            "format": "MULTI_TASK",
            **json.loads(json.dumps(body)),
        }
        self.jobs[job_id] = {
            "job_id": job_id,
            "creator_user_name": USER,
            "created_time": self._now(),
            "settings": settings,
        }
        return 200, {"job_id": job_id}

    def _job_get(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        job = self._job(query.get("job_id"))
        return (200, job) if isinstance(job, dict) else job

    def _job_list(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        name = query.get("name")
        expand = query.get("expand_tasks") == "true"
        found = []
        for job in self.jobs.values():
            if name is not None and job["settings"].get("name", "").lower() != name.lower():
                continue
            settings = job["settings"] if expand else {k: v for k, v in job["settings"].items() if k != "tasks"}
            found.append({**job, "settings": settings})
        return 200, {"jobs": found, "has_more": False} if found else {"has_more": False}

    def _job_reset(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        job = self._job(body.get("job_id"))
        if not isinstance(job, dict):
            return job
        new = body.get("new_settings")
        if not isinstance(new, dict):
            return _error(400, "INVALID_PARAMETER_VALUE", "new_settings is required")
        problem = self._check_tasks(new)
        if problem:
            return problem
        job["settings"] = {
            "max_concurrent_runs": 1,
            "timeout_seconds": 0,
            "format": "MULTI_TASK",
            **json.loads(json.dumps(new)),
        }
        return 200, {}

    def _job_delete(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        job = self._job(body.get("job_id"))
        if not isinstance(job, dict):
            return job
        del self.jobs[int(body["job_id"])]
        return 200, {}

    def _new_run(self, name: str, job_id: int | None, task: dict[str, Any], streaming: bool) -> _Run:
        run = _Run(next(self._ids), next(self._ids), name, job_id, task, streaming, self._now())
        self.runs[run.run_id] = run
        return run

    def _run_now(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        job = self._job(body.get("job_id"))
        if not isinstance(job, dict):
            return job
        full = len(self._active_runs(job["job_id"])) >= job["settings"].get("max_concurrent_runs", 1)
        run = self._new_run(job["settings"]["name"], job["job_id"], job["settings"]["tasks"][0], True)
        if full and (job["settings"].get("queue") or {}).get("enabled", True):
            run.state, run.message = "QUEUED", "Waiting for the active run of this job to end"
        elif full:
            run.state, run.result, run.message = "SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "Skipped"
        return 200, {"run_id": run.run_id, "number_in_job": run.run_id}

    def _active_runs(self, job_id: int) -> list[_Run]:
        """The job's runs that have not ended (queued ones included)."""
        ended = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
        return [r for r in self.runs.values() if r.job_id == job_id and r.state not in ended]

    def _run_submit(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        tasks = body.get("tasks") or []
        if len(tasks) != 1:
            return _error(400, "INVALID_PARAMETER_VALUE", "The stand-in runs exactly one task per submitted run")
        problem = self._check_tasks(body)
        if problem:
            return problem
        run = self._new_run(body.get("run_name") or "Untitled", None, tasks[0], False)
        return 200, {"run_id": run.run_id}

    def _advance(self, run: _Run) -> None:
        if run.state in ("TERMINATED", "SKIPPED"):
            return
        run.gets += 1
        if run.cancelled:
            if run.state != "TERMINATING":
                run.state, run.message = "TERMINATING", "Run cancellation requested"
            else:
                run.state, run.result, run.message = "TERMINATED", "CANCELED", "Run cancelled."
                run.end_time = self._now()
            return
        if run.state == "QUEUED":  # it starts once no other run of the job is active
            others = [r for r in self._active_runs(run.job_id or 0) if r.run_id != run.run_id and r.state != "QUEUED"]
            if not others:
                run.state, run.message, run.gets = "PENDING", "Waiting for cluster", 1
            return
        # The first get sees PENDING, the next `polls` RUNNING, then a one-off run has ended.
        if run.state == "PENDING" and run.gets >= 2:
            run.state, run.message = "RUNNING", "In run"
            dbfs = [p for p in (run.task.get("spark_python_task") or {}).get("parameters", []) if "dbfs:/" in p]
            if dbfs and not self.dbfs_root:
                # A workspace without the DBFS root ("Disable access to DBFS root and mounts"; new accounts are
                # made so): the job's first access to a dbfs:/ path fails, and with it the run.
                run.state, run.result, run.end_time = "TERMINATED", "FAILED", self._now()
                run.message = f"[DBFS_DISABLED] Public DBFS root is disabled. Access is denied on path: {dbfs[0]}"
            return
        if run.state == "RUNNING" and not run.streaming and run.gets > self.polls + 1:
            python_file = (run.task.get("spark_python_task") or {}).get("python_file", "")
            failed = any(needle in python_file for needle in self._run_faults)
            run.state = "TERMINATED"
            run.result = "FAILED" if failed else "SUCCESS"
            run.message = "Workload failed, see run output for details" if failed else ""
            run.end_time = self._now()

    def _run_view(self, run: _Run) -> dict[str, Any]:
        state: dict[str, Any] = {
            "life_cycle_state": run.state,
            "state_message": run.message,
            "user_cancelled_or_timedout": run.cancelled,
        }
        if run.result:
            state["result_state"] = run.result
        view = {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "number_in_job": run.run_id,
            "state": state,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "run_page_url": f"{self.url}/?o=0#job/{run.job_id or 0}/run/{run.run_id}",
            "run_type": "JOB_RUN" if run.job_id else "SUBMIT_RUN",
            "format": "MULTI_TASK",
            "tasks": [
                {
                    **run.task,
                    "run_id": run.task_run_id,
                    "state": state,
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                }
            ],
        }
        if run.job_id is not None:
            view["job_id"] = run.job_id
        return view

    def _run(self, run_id: Any) -> _Run | tuple[int, Any]:
        run = self.runs.get(int(run_id)) if str(run_id).isdigit() else None
        if run is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return run

    def _run_get(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        run = self._run(query.get("run_id"))
        if not isinstance(run, _Run):
            return run
        self._advance(run)
        return 200, self._run_view(run)

    def _run_output(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        task_run_id = int(query.get("run_id", "0")) if str(query.get("run_id", "")).isdigit() else 0
        run = next((r for r in self.runs.values() if r.task_run_id == task_run_id), None)
        if run is None:
            if task_run_id in self.runs:
                return _error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Retrieving the output of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead.",
                )
            return _error(400, "INVALID_PARAMETER_VALUE", f"Run {task_run_id} does not exist.")
        answer: dict[str, Any] = {"metadata": self._run_view(run)}
        python_file = (run.task.get("spark_python_task") or {}).get("python_file", "")
        fault = next((f for needle, f in self._run_faults.items() if needle in python_file), None)
        command = " ".join([python_file, *(run.task.get("spark_python_task") or {}).get("parameters", [])])
        scripted = next((logs for needle, logs in self._script_logs.items() if needle in command), None)
        logs = f"started {python_file}\n"
        if run.result == "SUCCESS":
            logs += f"{scripted if scripted is not None else 'done'}\n"
        elif run.result == "FAILED":
            # the service returns a failed run's stdout too: what it printed, then the error
            logs += f"{scripted}\n" if scripted is not None else ""
            if fault is not None:
                answer["error"], answer["error_trace"] = fault
                logs += f"{fault[0]}\n"
        answer["logs"] = logs
        answer["logs_truncated"] = False
        return 200, answer

    def _run_cancel(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        run = self._run(body.get("run_id"))
        if not isinstance(run, _Run):
            return run
        if run.state not in ("TERMINATED", "SKIPPED"):
            run.cancelled = True
        return 200, {}

    def _run_list(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        job_id = query.get("job_id")
        active_only = query.get("active_only") == "true"
        limit = int(query.get("limit", "25"))
        runs = [
            r
            for r in sorted(self.runs.values(), key=lambda r: (r.start_time, r.run_id), reverse=True)
            if (job_id is None or str(r.job_id) == job_id)
            and (not active_only or r.state not in ("TERMINATED", "SKIPPED"))
        ]
        page = [{k: v for k, v in self._run_view(r).items() if k != "tasks"} for r in runs[:limit]]
        answer: dict[str, Any] = {"has_more": len(runs) > limit}
        if page:
            answer["runs"] = page
        return 200, answer


def _drop_uninstalled(cluster: _Cluster) -> None:
    """A restart removes the libraries marked UNINSTALL_ON_RESTART."""
    cluster.libraries = [entry for entry in cluster.libraries if entry["status"] != "UNINSTALL_ON_RESTART"]


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _check_cluster_spec(body: dict[str, Any], versions: list[tuple[str, str]]) -> str | None:
    """The create/edit fields the reference types: a string spark_version it offers, integers, a
    known data_security_mode (dedicated needs single_user_name), string-valued maps."""
    if not isinstance(body.get("spark_version"), str):
        return "Missing required field: spark_version"
    if body["spark_version"] not in {key for key, _ in versions}:
        return f"Invalid spark version {body['spark_version']}."
    for key in ("num_workers", "autotermination_minutes"):
        if key in body and not isinstance(body[key], int):
            return f"{key} must be an integer"
    for key in ("node_type_id", "driver_node_type_id", "cluster_name", "single_user_name"):
        if key in body and not isinstance(body[key], str):
            return f"{key} must be a string"
    mode = body.get("data_security_mode")
    if mode is not None and mode not in _SECURITY_MODES:
        return f"Unknown data_security_mode {mode}"
    # The Clusters API reference (clusters/create, field `kind`, as databricks-sdk documented it in 2025):
    # "Clusters with kind = CLASSIC_PREVIEW support ... data_security_mode set to DATA_SECURITY_MODE_AUTO,
    # DATA_SECURITY_MODE_DEDICATED, or DATA_SECURITY_MODE_STANDARD"; without kind only the older names
    # (SINGLE_USER, USER_ISOLATION, NONE) are taken.
    if mode in _KIND_ONLY_MODES and body.get("kind") != "CLASSIC_PREVIEW":
        return f"data_security_mode {mode} is only supported with kind CLASSIC_PREVIEW"
    if mode in ("DATA_SECURITY_MODE_DEDICATED", "SINGLE_USER") and not body.get("single_user_name"):
        return "single_user_name is required for a dedicated (single user) cluster"
    for key in ("custom_tags", "spark_env_vars", "spark_conf"):
        value = body.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return f"{key} must map strings to strings"
    return None


def _handler(standin: DatabricksStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
            headers = {name: value for name, value in self.headers.items()}
            with standin._lock:
                standin.calls.append(Call(self.command, parts.path, query, body, headers))
                if self.headers.get("Authorization") != f"Bearer {standin.token}":
                    status, answer = _error(401, "UNAUTHENTICATED", "Invalid access token.")
                else:
                    status, answer = standin.handle(self.command, parts.path, query, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
