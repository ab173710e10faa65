"""SQL warehouses and the SQL Statement Execution API, added to the Databricks workspace stand-in.

``install_sql_warehouse(dbx, executor)`` adds these routes to a ``DatabricksStandIn`` (same HTTPS
server, same bearer token check, same ``{"error_code", "message"}`` errors). Request and response
fields follow the Databricks REST API reference (pages under https://docs.databricks.com/api/) at the
versions databricks-sdk 0.162.0 sends:

- Warehouses (sql/warehouses): ``GET /api/2.0/sql/warehouses`` (list: ``warehouses``),
  ``POST /api/2.0/sql/warehouses`` (create: answers ``id``; cluster_size one of the documented sizes,
  auto_stop_mins 0 or >= 10, 1 <= min_num_clusters <= max_num_clusters <= 40, warehouse_type PRO or
  CLASSIC, serverless only with PRO, tags.custom_tags of key/value), ``GET .../{id}`` (get: state
  STARTING, then RUNNING after ``warehouse_polls`` gets), ``POST .../{id}/start`` (``{}``).
- Statement execution (sql/statementexecution): ``POST /api/2.0/sql/statements`` (execute:
  warehouse_id and statement required; wait_timeout ``Ns`` with N 0 or 5 to 50; INLINE disposition
  with JSON_ARRAY only; ``parameters`` of name, value, type), ``GET .../{statement_id}``,
  ``GET .../{statement_id}/result/chunks/{chunk_index}``, ``POST .../{statement_id}/cancel``.

A statement runs through the test's ``executor(statement, parameters) -> (columns, rows)`` (columns
as (name, type_name), rows as JSON_ARRAY strings or None) when it ends, as the warehouse runs it:
the parameters' values as the strings sent, each typed marker cast to its declared type
(``typed_statement``); what a client sees follows the documented life cycle: PENDING, then RUNNING,
then SUCCEEDED (manifest and the first chunk) or FAILED (status.error with error_code and message),
after ``polls`` gets. With ``polls`` 0 and a wait_timeout above 0 the execute call answers the end
state at once; ``0s`` always answers PENDING. Results are cut into chunks of ``rows_per_chunk``
rows. An executor raises ``SqlFailure`` for a statement the warehouse refuses; ``spark_executor``
runs statements on a local SparkSession (Spark SQL is what Databricks SQL warehouses speak).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.standins.databricks_rest import DatabricksStandIn

Columns = list[tuple[str, str]]
DataRows = list[list[str | None]]
Executor = Callable[[str, Mapping[str, Any]], tuple[Columns, DataRows]]

CLUSTER_SIZES = ("2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large", "4X-Large")
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")
# type_name of the manifest's columns (ColumnInfoTypeName) for the SQL type names that differ.
_TYPE_TEXT = {"LONG": "BIGINT", "SHORT": "SMALLINT", "BYTE": "TINYINT"}
_INT_TYPES = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "LONG", "SHORT", "BYTE"}
_FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}


class SqlFailure(Exception):
    """What an executor raises for a statement that fails (the statement ends FAILED with these)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


@dataclass
class _Statement:
    statement_id: str
    warehouse_id: str
    text: str
    parameters: dict[str, str | None]  # as sent: the values are strings
    types: dict[str, str] = field(default_factory=dict)  # the declared type of each typed parameter
    columns: Columns = field(default_factory=list)
    rows: DataRows = field(default_factory=list)
    failure: tuple[str, str] | None = None  # (error_code, message) once it ends FAILED
    polls_left: int = 0
    state: str = "PENDING"
    gets: int = 0


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


class SqlWarehouseStandIn:
    """The warehouse and statement routes; ``install_sql_warehouse`` hooks one into a DatabricksStandIn."""

    def __init__(
        self, executor: Executor | None = None, *, rows_per_chunk: int = 1000, polls: int = 0, warehouse_polls: int = 1
    ) -> None:
        self.executor = executor
        self.rows_per_chunk = rows_per_chunk
        self.polls = polls  # gets before a statement shows its end state (huge: it never ends)
        self.warehouse_polls = warehouse_polls
        self.warehouses: dict[str, dict[str, Any]] = {}
        self.statements: dict[str, _Statement] = {}
        self._ids = itertools.count(1)

    # --- for tests --------------------------------------------------------------------------------

    def executed(self) -> list[str]:
        """The statements run so far, oldest first."""
        return [s.text for s in self.statements.values()]

    # --- dispatch ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any] | None:
        """The answer when ``method path`` is one of these routes, else None."""
        if not path.startswith("/api/2.0/sql/"):
            return None
        if method == "POST" and not isinstance(body, dict):
            return _error(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/api/2\.0/sql/warehouses", self._warehouse_list),
            ("POST", r"/api/2\.0/sql/warehouses", self._warehouse_create),
            ("GET", r"/api/2\.0/sql/warehouses/([^/]+)", self._warehouse_get),
            ("POST", r"/api/2\.0/sql/warehouses/([^/]+)/start", self._warehouse_start),
            ("POST", r"/api/2\.0/sql/statements/?", self._execute),
            ("GET", r"/api/2\.0/sql/statements/([^/]+)", self._statement_get),
            ("GET", r"/api/2\.0/sql/statements/([^/]+)/result/chunks/([^/]+)", self._chunk),
            ("POST", r"/api/2\.0/sql/statements/([^/]+)/cancel", self._cancel),
        ]
        for route_method, pattern, route in routes:
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                return route(body, *match.groups())
        return None

    # --- warehouses -------------------------------------------------------------------------------

    def _warehouse_view(self, warehouse: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in warehouse.items() if not key.startswith("_")}

    def _warehouse_list(self, body: Any) -> tuple[int, Any]:
        return 200, {"warehouses": [self._warehouse_view(w) for w in self.warehouses.values()]}

    def _warehouse_create(self, body: dict[str, Any]) -> tuple[int, Any]:
        problem = _check_warehouse(body)
        if problem:
            return _error(400, "INVALID_PARAMETER_VALUE", problem)
        if any(w["name"] == body["name"] for w in self.warehouses.values()):
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"SQL warehouse with name `{body['name']}` already exists")
        warehouse_id = f"{next(self._ids):04x}" + uuid.uuid4().hex[:12]
        self.warehouses[warehouse_id] = {
            "id": warehouse_id,
            "name": body["name"],
            "cluster_size": body["cluster_size"],
            "min_num_clusters": body.get("min_num_clusters", 1),
            "max_num_clusters": body.get("max_num_clusters", body.get("min_num_clusters", 1)),
            "auto_stop_mins": body.get("auto_stop_mins", 120),
            "enable_serverless_compute": body.get("enable_serverless_compute", False),
            "enable_photon": body.get("enable_photon", True),
            "warehouse_type": body.get("warehouse_type", "CLASSIC"),
            "tags": body.get("tags", {}),
            "state": "STARTING",
            "num_clusters": 0,
            "odbc_params": {"protocol": "https", "port": 443, "path": f"/sql/1.0/warehouses/{warehouse_id}"},
            "_polls_left": self.warehouse_polls,
        }
        return 200, {"id": warehouse_id}

    def _warehouse(self, warehouse_id: str) -> dict[str, Any] | tuple[int, Any]:
        warehouse = self.warehouses.get(warehouse_id)
        if warehouse is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {warehouse_id} does not exist.")
        return warehouse

    def _warehouse_get(self, body: Any, warehouse_id: str) -> tuple[int, Any]:
        warehouse = self._warehouse(warehouse_id)
        if isinstance(warehouse, tuple):
            return warehouse
        if warehouse["state"] == "STARTING":
            warehouse["_polls_left"] -= 1
            if warehouse["_polls_left"] <= 0:
                warehouse.update(state="RUNNING", num_clusters=1)
        return 200, self._warehouse_view(warehouse)

    def _warehouse_start(self, body: Any, warehouse_id: str) -> tuple[int, Any]:
        warehouse = self._warehouse(warehouse_id)
        if isinstance(warehouse, tuple):
            return warehouse
        if warehouse["state"] in ("STOPPED", "STOPPING"):
            warehouse.update(state="STARTING", _polls_left=self.warehouse_polls)
        return 200, {}

    # --- statements -------------------------------------------------------------------------------

    def _execute(self, body: dict[str, Any]) -> tuple[int, Any]:
        for key in ("warehouse_id", "statement"):
            if not isinstance(body.get(key), str) or not body[key]:
                return _error(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {key}")
        warehouse = self._warehouse(body["warehouse_id"])
        if isinstance(warehouse, tuple):
            return warehouse
        wait = re.fullmatch(r"(\d+)s", str(body.get("wait_timeout", "10s")))
        if wait is None or not (int(wait[1]) == 0 or 5 <= int(wait[1]) <= 50):
            return _error(
                400, "INVALID_PARAMETER_VALUE", "wait_timeout must be '0s' or between '5s' and '50s' (e.g. '10s')"
            )
        if body.get("disposition", "INLINE") != "INLINE":
            return _error(400, "INVALID_PARAMETER_VALUE", "the stand-in serves only the INLINE disposition")
        if body.get("format", "JSON_ARRAY") != "JSON_ARRAY":
            return _error(400, "INVALID_PARAMETER_VALUE", "INLINE disposition supports only the JSON_ARRAY format")
        parsed = _parameters(body.get("parameters", []))
        if isinstance(parsed, str):
            return _error(400, "INVALID_PARAMETER_VALUE", parsed)
        parameters, types = parsed
        statement = _Statement(
            statement_id=f"01f0{next(self._ids):04x}-{uuid.uuid4()}"[:36],
            warehouse_id=body["warehouse_id"],
            text=body["statement"],
            parameters=parameters,
            types=types,
            polls_left=self.polls,
        )
        # A statement starts its warehouse (a stopped warehouse starts on its first statement).
        warehouse.update(state="RUNNING", num_clusters=1)
        self.statements[statement.statement_id] = statement
        if int(wait[1]) > 0 and statement.polls_left <= 0:
            self._finish(statement)
        elif int(wait[1]) > 0 and body.get("on_wait_timeout", "CONTINUE") == "CANCEL":
            statement.state = "CANCELED"  # it outlasted the wait, and the client asked to cancel then
        return 200, self._view(statement)

    def _finish(self, statement: _Statement) -> None:
        """Run the statement (only now: one cancelled before its end never runs) and end it."""
        if self.executor is None:
            statement.failure = ("INTERNAL_ERROR", "stand-in: this test gave the warehouse no SQL executor")
        else:
            try:
                statement.columns, statement.rows = self.executor(
                    typed_statement(statement.text, statement.types), statement.parameters
                )
            except SqlFailure as failure:
                statement.failure = (failure.error_code, failure.message)
        statement.state = "FAILED" if statement.failure else "SUCCEEDED"

    def _statement(self, statement_id: str) -> _Statement | tuple[int, Any]:
        statement = self.statements.get(statement_id)
        if statement is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"The statement {statement_id} does not exist.")
        return statement

    def _statement_get(self, body: Any, statement_id: str) -> tuple[int, Any]:
        statement = self._statement(statement_id)
        if isinstance(statement, tuple):
            return statement
        statement.gets += 1
        if statement.state not in _TERMINAL:
            statement.polls_left -= 1
            if statement.polls_left <= 0:
                self._finish(statement)
            else:
                statement.state = "RUNNING"
        return 200, self._view(statement)

    def _chunks(self, statement: _Statement) -> list[tuple[int, int]]:
        """(row_offset, row_count) of each chunk."""
        total = len(statement.rows)
        return [(offset, min(self.rows_per_chunk, total - offset)) for offset in range(0, total, self.rows_per_chunk)]

    def _result(self, statement: _Statement, index: int) -> dict[str, Any]:
        chunks = self._chunks(statement)
        if not chunks:
            return {"chunk_index": 0, "row_offset": 0, "row_count": 0}
        offset, count = chunks[index]
        result: dict[str, Any] = {
            "chunk_index": index,
            "row_offset": offset,
            "row_count": count,
            "data_array": statement.rows[offset : offset + count],
        }
        if index + 1 < len(chunks):
            result["next_chunk_index"] = index + 1
            result["next_chunk_internal_link"] = (
                f"/api/2.0/sql/statements/{statement.statement_id}/result/chunks/{index + 1}"
            )
        return result

    def _view(self, statement: _Statement) -> dict[str, Any]:
        view: dict[str, Any] = {"statement_id": statement.statement_id, "status": {"state": statement.state}}
        if statement.state == "FAILED" and statement.failure:
            code, message = statement.failure
            view["status"]["error"] = {"error_code": code, "message": message}
        if statement.state == "SUCCEEDED":
            chunks = self._chunks(statement)
            view["manifest"] = {
                "format": "JSON_ARRAY",
                "schema": {
                    "column_count": len(statement.columns),
                    "columns": [
                        {
                            "name": name,
                            "type_name": type_name,
                            "type_text": _TYPE_TEXT.get(type_name, type_name),
                            "position": position,
                        }
                        for position, (name, type_name) in enumerate(statement.columns)
                    ],
                },
                "total_chunk_count": len(chunks),
                "chunks": [
                    {"chunk_index": i, "row_offset": offset, "row_count": count}
                    for i, (offset, count) in enumerate(chunks)
                ],
                "total_row_count": len(statement.rows),
                "truncated": False,
            }
            view["result"] = self._result(statement, 0)
        return view

    def _chunk(self, body: Any, statement_id: str, index: str) -> tuple[int, Any]:
        statement = self._statement(statement_id)
        if isinstance(statement, tuple):
            return statement
        if statement.state != "SUCCEEDED":
            return _error(400, "INVALID_STATE", f"The statement is {statement.state}: it has no result.")
        if not index.isdigit() or int(index) >= max(1, len(self._chunks(statement))):
            return _error(400, "INVALID_PARAMETER_VALUE", f"Chunk index {index} is out of range.")
        return 200, self._result(statement, int(index))

    def _cancel(self, body: Any, statement_id: str) -> tuple[int, Any]:
        statement = self._statement(statement_id)
        if isinstance(statement, tuple):
            return statement
        if statement.state not in _TERMINAL:
            statement.state = "CANCELED"
        return 200, {}


def _check_warehouse(body: dict[str, Any]) -> str | None:
    """The create fields the reference constrains."""
    if not isinstance(body.get("name"), str) or not body["name"] or len(body["name"]) >= 100:
        return "name is required and must be less than 100 characters"
    if body.get("cluster_size") not in CLUSTER_SIZES:
        return f"cluster_size must be one of {', '.join(CLUSTER_SIZES)}"
    stop = body.get("auto_stop_mins", 120)
    if not isinstance(stop, int) or not (stop == 0 or stop >= 10):
        return "auto_stop_mins must be 0 or at least 10"
    low = body.get("min_num_clusters", 1)
    high = body.get("max_num_clusters", low)
    if not isinstance(low, int) or not isinstance(high, int) or not 1 <= low <= high <= 40:
        return "min_num_clusters must be > 0 and <= max_num_clusters, which must be <= 40"
    kind = body.get("warehouse_type", "CLASSIC")
    if kind not in ("PRO", "CLASSIC"):
        return "warehouse_type must be PRO or CLASSIC"
    if body.get("enable_serverless_compute") and kind != "PRO":
        return "a serverless warehouse must have warehouse_type PRO"
    tags = body.get("tags", {})
    pairs = tags.get("custom_tags", []) if isinstance(tags, dict) else None
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and isinstance(p.get("key"), str) and isinstance(p.get("value"), str) for p in pairs
    ):
        return "tags.custom_tags must be a list of {key, value} strings"
    return None


def _parameters(items: Any) -> tuple[dict[str, str | None], dict[str, str]] | str:
    """The statement's parameters by name as the strings sent, and the declared type of each typed one;
    a message if a value cannot be cast to its type."""
    if not isinstance(items, list):
        return "parameters must be a list"
    values: dict[str, str | None] = {}
    types: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return "each parameter needs a name"
        name, value, type_ = item["name"], item.get("value"), str(item.get("type", "STRING")).upper()
        values[name] = None if value is None else str(value)
        if type_ != "STRING":
            types[name] = type_
        if value is None:
            continue
        try:
            if type_ in _INT_TYPES:
                int(value)
            elif type_ in _FLOAT_TYPES:
                float(value)
            elif type_ != "STRING":
                return f"parameter {name}: the stand-in does not cast to {type_}"
        except ValueError:
            return f"parameter {name}: '{value}' cannot be cast to {type_}"
    return values, types


def typed_statement(text: str, types: Mapping[str, str]) -> str:
    """The statement as the warehouse runs it: each typed marker ``:name`` becomes ``CAST(:name AS TYPE)``.

    The Statement Execution API reference (POST /api/2.0/sql/statements, ``parameters``): "If the type is
    given, ... a value is correct if the provided string can be converted to the requested type using the
    cast function" -- the value arrives as a string and is cast to exactly the declared type, so
    ``LIMIT :n`` with type BIGINT is ``LIMIT CAST('3' AS BIGINT)``, which Spark refuses (a LIMIT must be INT).
    """
    for name, type_ in types.items():
        text = re.sub(rf"(?<![:\w]):{re.escape(name)}\b", f"CAST(:{name} AS {type_})", text)
    return text


# Spark's type names (DataType.typeName) -> the manifest's type_name.
_SPARK_TYPE_NAMES = {
    "long": "LONG",
    "integer": "INT",
    "short": "SHORT",
    "byte": "BYTE",
    "double": "DOUBLE",
    "float": "FLOAT",
    "string": "STRING",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "decimal": "DECIMAL",
    "binary": "BINARY",
}


def spark_executor(session: SparkSession) -> Executor:
    """Statements on ``session`` (with parameter markers), rows as JSON_ARRAY strings; a statement
    Spark refuses fails with error_code BAD_REQUEST and Spark's message (its error class first)."""
    from pyspark.errors import AnalysisException

    from backend.aggregates.warehouse_reader import PARAMETERS_AFTER_PARSING, short_message

    for key, value in PARAMETERS_AFTER_PARSING.items():
        session.conf.set(key, value)

    def execute(statement: str, parameters: Mapping[str, Any]) -> tuple[Columns, DataRows]:
        try:
            frame = session.sql(statement, args=dict(parameters))
            columns = [
                (f.name, _SPARK_TYPE_NAMES.get(f.dataType.typeName(), f.dataType.typeName().upper()))
                for f in frame.schema.fields
            ]
            frame = frame.toDF(*(f"c{i}" for i in range(len(columns))))
            rows = frame.select([frame[c].cast("string") for c in frame.columns]).collect()
        except AnalysisException as exc:
            raise SqlFailure("BAD_REQUEST", short_message(str(exc))) from None
        return columns, [list(row) for row in rows]

    return execute


def install_sql_warehouse(
    dbx: DatabricksStandIn, executor: Executor | None = None, *, rows_per_chunk: int = 1000, polls: int = 0
) -> SqlWarehouseStandIn:
    """Serve the warehouse and statement routes from ``dbx`` (its token, its lock, its call log)."""
    sql = SqlWarehouseStandIn(executor, rows_per_chunk=rows_per_chunk, polls=polls, warehouse_polls=dbx.polls)
    dbx.extra_routes.append(sql.handle)
    return sql
