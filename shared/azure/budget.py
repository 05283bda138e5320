"""The RewrapBudget port on Table Storage: one small entity per scope (a vault), shared by every worker.

PartitionKey = the escaped scope, RowKey = `budget`; properties Scope, Window (the window index, see
shared.coordination.budget), Used and Limit. A reservation reads it, takes min(want, remaining) and writes it back
If-Match the ETag it read (or inserts it for the first window ever); a 412 or 409 means another worker reserved first,
so it reads again, at most MAX_ROUNDS times. A newer window replaces the entity, so the table holds one row per vault,
not one per window. A reserver whose clock lags behind the stored window never reopens an older window: it spends from
the stored one. Under a storm of reservers that outlasts MAX_ROUNDS the grant is 0 with a short retry_after: a worker
backs off, it never over-spends and never fails a DEK for it."""

from __future__ import annotations

from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key
from shared.coordination.budget import BudgetGrant, check_request, seconds_to_window, take, window_index
from shared.errors import NotFound

ROW = "budget"
MAX_ROUNDS = 32
CONTENDED_RETRY_SECONDS = 0.05


class TableRewrapBudget:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def reserve(self, scope: str, want: int, *, now: datetime, limit_per_window: int, window: timedelta) -> BudgetGrant:
        check_request(want, limit_per_window, window)
        partition = checked_key("scope", scope)
        if want == 0:
            return BudgetGrant(0)
        client = self._table.ensure()
        index = window_index(now, window)
        try:
            for _ in range(MAX_ROUNDS):
                try:
                    current = client.get_entity(partition, ROW)
                except ResourceNotFoundError:
                    granted = take(0, want, limit_per_window)
                    try:
                        client.create_entity(_entity(partition, scope, index, granted, limit_per_window))
                    except ResourceExistsError:
                        continue  # another worker's first reservation landed first
                    return BudgetGrant(granted)
                stored = _int(current["Window"])
                used = int(current["Used"]) if stored >= index else 0
                at = max(stored, index)
                granted = take(used, want, limit_per_window)
                if granted == 0:
                    return BudgetGrant(0, seconds_to_window(now, window, at + 1))
                try:
                    client.update_entity(
                        _entity(partition, scope, at, used + granted, limit_per_window),
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                except (ResourceModifiedError, ResourceNotFoundError):
                    continue
                return BudgetGrant(granted)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"re-wrap budget {scope}", NotFound) from exc
        return BudgetGrant(0, CONTENDED_RETRY_SECONDS)


def _int(value: object) -> int:
    """An Edm.Int64 comes back as EntityProperty (Python ints have no width to tell it by), an Int32 as int."""
    return int(value.value if isinstance(value, EntityProperty) else value)  # type: ignore[arg-type]


def _entity(partition: str, scope: str, index: int, used: int, limit: int) -> dict:
    return {
        "PartitionKey": partition,
        "RowKey": ROW,
        "Scope": scope,
        "Window": EntityProperty(index, EdmType.INT64),
        "Used": used,
        "Limit": limit,
    }
