"""The AlertLog port on Table Storage: one partition, RowKey the alert id (inverted instant first), so the newest
alerts are the first rows of a plain range read and a state filter is the service's, not a scan here."""

from __future__ import annotations

from itertools import islice

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableEntity, UpdateMode

from shared.alertlog import AlertEntry, AlertState, check_alert_id
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, utc_instant
from shared.errors import InvalidInput, NotFound

PARTITION = "alerts"
MAX_RECENT = 1000


class TableAlertLog:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def add(self, entry: AlertEntry) -> AlertEntry:
        check_alert_id(entry.alert_id)
        try:
            self._table.ensure().create_entity(_entity(entry))
        except ResourceExistsError:
            return self.get(entry.alert_id) or entry  # queued again after a lost reply: the first entry stands
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"alert log {self._table.name}", NotFound) from exc
        return entry

    def put(self, entry: AlertEntry) -> AlertEntry:
        check_alert_id(entry.alert_id)
        try:
            self._table.ensure().upsert_entity(_entity(entry), mode=UpdateMode.REPLACE)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"alert log {self._table.name}", NotFound) from exc
        return entry

    def get(self, alert_id: str) -> AlertEntry | None:
        check_alert_id(alert_id)
        try:
            return _entry(self._table.ensure().get_entity(PARTITION, alert_id))
        except ResourceNotFoundError:
            return None
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"alert log {self._table.name}", NotFound) from exc

    def recent(self, *, limit: int = 50, state: AlertState | None = None) -> list[AlertEntry]:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RECENT:
            raise InvalidInput("limit", f"must be an integer from 1 to {MAX_RECENT}")
        query, parameters = "PartitionKey eq @pk", {"pk": PARTITION}
        if state is not None:
            query += " and State eq @state"
            parameters["state"] = AlertState(state).value
        try:
            rows = self._table.ensure().query_entities(query, parameters=parameters, results_per_page=limit)
            return [_entry(e) for e in islice(rows, limit)]
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"alert log {self._table.name}", NotFound) from exc


def _entity(entry: AlertEntry) -> dict:
    entity = {
        "PartitionKey": PARTITION,
        "RowKey": entry.alert_id,
        "Type": entry.type,
        "Subject": entry.subject,
        "Severity": entry.severity,
        "Message": entry.message,
        "State": entry.state.value,
        "UpdatedAt": utc_instant(entry.updated_at),
        "Attempts": EntityProperty(int(entry.attempts), EdmType.INT32),
    }
    for name, value in (("Key", entry.key), ("Error", entry.error), ("AuditRecordId", entry.audit_record_id)):
        if value is not None:
            entity[name] = value
    return entity


def _entry(entity: TableEntity) -> AlertEntry:
    attempts = entity.get("Attempts", 0)
    return AlertEntry(
        alert_id=entity["RowKey"],
        type=entity["Type"],
        subject=entity["Subject"],
        severity=entity["Severity"],
        message=entity["Message"],
        state=AlertState(entity["State"]),
        updated_at=utc_instant(entity["UpdatedAt"]),
        key=entity.get("Key"),
        attempts=int(attempts.value if isinstance(attempts, EntityProperty) else attempts),
        error=entity.get("Error"),
        audit_record_id=entity.get("AuditRecordId"),
    )
