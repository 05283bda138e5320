"""The Revocations port on Table Storage: one entity per (key, principal) an operator revoked on purpose."""

from __future__ import annotations

from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, unescape_key
from shared.errors import NotFound
from shared.timestamps import iso_utc


class TableRevocations:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def revoked(self, key: str) -> set[str]:
        partition = checked_key("key", key.lower())
        try:
            rows = self._table.ensure().query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"]
            )
            return {unescape_key(row["RowKey"]) for row in rows}
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocations of {key}", NotFound) from exc

    def record(self, key: str, principal_id: str, *, reason: str, at: datetime) -> None:
        entity = {
            "PartitionKey": checked_key("key", key.lower()),
            "RowKey": checked_key("principal_id", principal_id.lower()),
            "Reason": reason[:1000],
            "At": iso_utc(at),
        }
        try:
            self._table.ensure().upsert_entity(entity)
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocation of {principal_id} from {key}", NotFound) from exc

    def clear(self, key: str, principal_id: str) -> None:
        try:
            self._table.ensure().delete_entity(
                checked_key("key", key.lower()), checked_key("principal_id", principal_id.lower())
            )
        except ResourceNotFoundError:
            return
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocation of {principal_id} from {key}", NotFound) from exc
