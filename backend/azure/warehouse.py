"""A Databricks SQL warehouse: where the console on a laptop reads the Delta aggregates from.

- ``WarehouseStatementRunner``: runs one statement with the SQL Statement Execution API (databricks-sdk
  ``statement_execution``): JSON_ARRAY rows inline, polled until done or a deadline, every chunk read.
- ``ensure_warehouse``: the wizard's step that finds the warehouse by name or creates a small one.
- ``warehouse_hourly_dbu``: what a running warehouse of a size consumes, for the plan's cost line.
"""

from __future__ import annotations

import contextlib
import time

from azure.core.exceptions import AzureError
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.sql import (
    CreateWarehouseRequestWarehouseType,
    Disposition,
    EndpointTagPair,
    EndpointTags,
    ExecuteStatementRequestOnWaitTimeout,
    Format,
    State,
    StatementParameterListItem,
    StatementResponse,
    StatementState,
)

from backend.aggregates.warehouse_reader import Parameters, Rows, StatementError
from backend.azure.arm import Progress, StepResult, report
from backend.azure.plan_config import TAG_KEY

WAREHOUSE = "databricks.sql_warehouse"  # the plan's and the wizard's step type
CLUSTER_SIZE = "2X-Small"  # the smallest: the console's reads are a few small aggregations
AUTO_STOP_MINS = 10  # the API's least (0 or >= 10): a warehouse left alone stops billing after this
_ACTIVE = (StatementState.PENDING, StatementState.RUNNING)

# DBUs a SQL warehouse consumes per hour while it runs, by cluster size. Source: Databricks' SQL
# pricing ("Databricks SQL" on the Azure Databricks pricing page, DBU per hour by warehouse size;
# the same for serverless, pro and classic). Written from that table without network access here,
# like backend/azure/prices.toml's [sql_warehouse_dbu_per_hour] (a test checks the two agree).
_DBU_PER_HOUR = {
    "2X-Small": 4.0,
    "X-Small": 6.0,
    "Small": 12.0,
    "Medium": 24.0,
    "Large": 40.0,
    "X-Large": 80.0,
    "2X-Large": 144.0,
    "3X-Large": 272.0,
    "4X-Large": 528.0,
}


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # SQL INT


class WarehouseError(StatementError):
    """A statement the warehouse failed, cancelled or did not finish in time (error code and message)."""


def warehouse_hourly_dbu(cluster_size: str) -> float:
    """DBU per hour a running warehouse of ``cluster_size`` ("2X-Small", ...) consumes."""
    try:
        return _DBU_PER_HOUR[cluster_size]
    except KeyError:
        raise ValueError(f"unknown SQL warehouse size {cluster_size!r}: one of {', '.join(_DBU_PER_HOUR)}") from None


def _parameter(name: str, value: str | int | float) -> StatementParameterListItem:
    """A named parameter; the API takes every value as a string with the SQL type to cast it to."""
    if isinstance(value, bool):
        raise TypeError(f"parameter {name}: booleans are not supported")
    if isinstance(value, int):
        # The API casts the string to exactly this type, and a LIMIT must be INT (Spark refuses BIGINT there).
        sql_type = "INT" if _INT_MIN <= value <= _INT_MAX else "BIGINT"
        return StatementParameterListItem(name=name, value=str(value), type=sql_type)
    if isinstance(value, float):
        return StatementParameterListItem(name=name, value=repr(value), type="DOUBLE")
    return StatementParameterListItem(name=name, value=value)  # no type: STRING


class WarehouseStatementRunner:
    """``StatementRunner`` on the SQL warehouse ``warehouse_id`` of the workspace ``client`` reaches.

    A statement that is not done ``timeout_s`` seconds after it was sent is cancelled and raises
    WarehouseError (a stopped warehouse starts on the first statement, which can take minutes).
    """

    def __init__(
        self,
        client: WorkspaceClient,
        warehouse_id: str,
        timeout_s: float = 60,
        *,
        wait_timeout_s: int = 10,
        poll_s: float = 1.0,
    ) -> None:
        # The API takes 0 (answer at once) or 5 to 50 seconds for how long the first call waits.
        if wait_timeout_s != 0 and not 5 <= wait_timeout_s <= 50:
            raise ValueError(f"wait_timeout_s is 0 or 5 to 50 s, not {wait_timeout_s} s")
        self.client = client
        self.warehouse_id = warehouse_id
        self.timeout_s = timeout_s
        self.wait_timeout_s = wait_timeout_s
        self.poll_s = poll_s

    def run(self, statement: str, parameters: Parameters) -> Rows:
        api = self.client.statement_execution
        deadline = time.monotonic() + self.timeout_s
        try:
            response = api.execute_statement(
                statement=statement,
                warehouse_id=self.warehouse_id,
                format=Format.JSON_ARRAY,
                disposition=Disposition.INLINE,
                wait_timeout=f"{self.wait_timeout_s}s",
                # CONTINUE: a statement still running after the wait is polled below, not cancelled.
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
                parameters=[_parameter(name, value) for name, value in parameters.items()],
            )
            statement_id = response.statement_id or ""
            while _statement_state(response) in _ACTIVE:
                if time.monotonic() >= deadline:
                    self._cancel(statement_id)
                    raise WarehouseError(
                        "DEADLINE_EXCEEDED",
                        f"the statement was still {_state_name(response)} after {self.timeout_s:g} s and was "
                        f"cancelled; the SQL warehouse {self.warehouse_id} may be starting (a stopped warehouse "
                        "starts on the first statement, which can take a few minutes): try again shortly",
                    )
                time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))
                response = api.get_statement(statement_id)
            if _statement_state(response) != StatementState.SUCCEEDED:
                error = response.status.error if response.status else None
                code = error.error_code.value if error and error.error_code else _state_name(response)
                message = error.message if error and error.message else f"the statement ended {_state_name(response)}"
                raise WarehouseError(code, message)
            return self._rows(statement_id, response)
        except DatabricksError as exc:  # the call itself refused: bad token, unknown warehouse, ...
            raise WarehouseError(exc.error_code or type(exc).__name__, str(exc)) from None
        except (OSError, AzureError) as exc:  # the workspace unreachable, or no Entra token for it
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WarehouseError("UNREACHABLE", f"the workspace did not answer: {first_line}") from None

    def _rows(self, statement_id: str, response: StatementResponse) -> Rows:
        result = response.result
        rows: Rows = []
        while result is not None:
            rows.extend(tuple(row) for row in result.data_array or [])
            if result.next_chunk_index is None:
                break
            result = self.client.statement_execution.get_statement_result_chunk_n(statement_id, result.next_chunk_index)
        return rows

    def _cancel(self, statement_id: str) -> None:
        # Best effort: the warehouse also ends an abandoned statement itself.
        with contextlib.suppress(DatabricksError):
            self.client.statement_execution.cancel_execution(statement_id)


def _statement_state(response: StatementResponse) -> StatementState | None:
    return response.status.state if response.status else None


def _state_name(response: StatementResponse) -> str:
    state = _statement_state(response)
    return state.value if state else "UNKNOWN"


def ensure_warehouse(
    client: WorkspaceClient,
    name: str,
    progress: Progress | None = None,
    *,
    cluster_size: str = CLUSTER_SIZE,
    auto_stop_mins: int = AUTO_STOP_MINS,
    tag_value: str = "tweetstream",
) -> tuple[str, str]:
    """(id, "exists" | "created"): the SQL warehouse called ``name``, created small when missing.

    The created one is serverless (starts in seconds, billed only while it runs), PRO (serverless needs
    it), ``cluster_size``, one cluster, stops after ``auto_stop_mins`` idle minutes, tagged like
    everything the wizard makes. It is not waited for: the first statement starts it. One found by name
    is used as it is.
    """
    warehouse_hourly_dbu(cluster_size)  # ValueError for a size the API does not have
    if auto_stop_mins != 0 and auto_stop_mins < 10:
        raise ValueError(
            f"auto_stop_mins = {auto_stop_mins} min: a SQL warehouse stops after 0 (never) or at least 10 idle minutes"
        )
    for found in client.warehouses.list():
        if found.name == name and found.id and found.state not in (State.DELETED, State.DELETING):
            report(progress, StepResult(WAREHOUSE, name, "exists", f"{found.id}, {_enum(found.state)}"))
            return found.id, "exists"
    report(
        progress,
        StepResult(WAREHOUSE, name, "creating", f"serverless {cluster_size}, stops after {auto_stop_mins} min idle"),
    )
    created = client.warehouses.create(
        name=name,
        cluster_size=cluster_size,
        min_num_clusters=1,
        max_num_clusters=1,
        auto_stop_mins=auto_stop_mins,
        enable_serverless_compute=True,
        warehouse_type=CreateWarehouseRequestWarehouseType.PRO,
        tags=EndpointTags(custom_tags=[EndpointTagPair(key=TAG_KEY, value=tag_value)]),
    )
    warehouse_id = str(created.response.id if created.response and created.response.id else created.id)
    report(progress, StepResult(WAREHOUSE, name, "created", warehouse_id))
    return warehouse_id, "created"


def _enum(value: object) -> str:
    return str(getattr(value, "value", value))
