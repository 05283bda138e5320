"""The AuditTrail port on Table Storage: newest first by key order, so a page is one range read, not a scan and sort.

Every record lives in one partition (`audit`): the trail is a few records per rotation, far below what one partition
serves, and a single partition is what makes "newest first across keys" a plain ascending RowKey read. RowKey is
the inverted instant (microseconds before the year 10000, zero-padded) then the record id, so ascending order is
newest first and `since` bounds the range. The key filter uses a lower-cased copy, as key names match regardless of
case. The continuation token is ours (the RowKey to start at, as base64 JSON), so it resumes exactly where the last
page ended and a token from anywhere else is refused by its shape.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from itertools import islice

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import EdmType, EntityProperty, TableEntity

from shared.audit import MAX_PAGE_SIZE, AuditRecord, check_record_id, stored_detail
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, decode_row_token, encode_row_token, utc_instant
from shared.errors import InvalidInput, NotFound
from shared.model import Page

PARTITION = "audit"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_DIGITS = 18
_LAST = 10**INSTANT_DIGITS - 1  # > microseconds from 1970 to 9999-12-31
_ROW = re.compile(r"\d{18}-[A-Za-z0-9_-]{1,64}")


class TableAuditTrail:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def append(self, record: AuditRecord) -> AuditRecord:
        check_record_id(record.record_id)
        stored = AuditRecord(
            record.record_id,
            utc_instant(record.at),
            record.action,
            record.trigger,
            record.key,
            record.outcome,
            record.from_version,
            record.to_version,
            record.duration_ms,
            stored_detail(record.detail),
        )
        try:
            self._table.ensure().create_entity(_entity(stored))
        except ResourceExistsError:
            pass  # the same record appended again (a retry after a lost reply): it is there once
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"audit trail {self._table.name}", NotFound) from exc
        return stored

    def page(
        self,
        *,
        key: str | None = None,
        since: datetime | None = None,
        continuation: str | None = None,
        page_size: int = 50,
        action: str | None = None,
        outcome: str | None = None,
    ) -> Page:
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        clauses = ["PartitionKey eq @pk"]
        parameters: dict[str, str] = {"pk": PARTITION}
        if continuation:
            clauses.append("RowKey ge @start")
            parameters["start"] = decode_token(continuation)
        if since is not None:
            clauses.append("RowKey lt @end")  # every row of an instant >= since sorts before the next instant's
            parameters["end"] = f"{_inverted(since) + 1:0{INSTANT_DIGITS}d}"
        if key is not None:
            clauses.append("KeyLower eq @key")
            parameters["key"] = key.lower()
        # Filtered by the service, not by reading pages here: a revocation is found behind any number of re-wraps.
        if action is not None:
            clauses.append("Action eq @action")
            parameters["action"] = action
        if outcome is not None:
            clauses.append("Outcome eq @outcome")
            parameters["outcome"] = outcome
        try:
            entities = self._table.ensure().query_entities(
                " and ".join(clauses), parameters=parameters, results_per_page=min(page_size + 1, MAX_PAGE_SIZE)
            )
            rows = list(islice(entities, page_size + 1))  # one more than asked tells whether another page exists
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"audit trail {self._table.name}", NotFound) from exc
        token = encode_token(rows[page_size]["RowKey"]) if len(rows) > page_size else None
        return Page(tuple(_record(e) for e in rows[:page_size]), token)


def row_key(at: datetime, record_id: str) -> str:
    return f"{_inverted(at):0{INSTANT_DIGITS}d}-{record_id}"


def encode_token(start_row: str) -> str:
    return encode_row_token(start_row)


def decode_token(token: str) -> str:
    return decode_row_token(token, store="audit trail", valid=_ROW.fullmatch)


def _inverted(at: datetime) -> int:
    delta = utc_instant(at) - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros < 0:
        raise InvalidInput("at", "must not be before 1970")
    return _LAST - micros


def _entity(record: AuditRecord) -> dict:
    entity = {
        "PartitionKey": PARTITION,
        "RowKey": row_key(record.at, record.record_id),
        "RecordId": record.record_id,
        "At": record.at,
        "Action": record.action,
        "Trigger": record.trigger,
        "Key": record.key,
        "KeyLower": record.key.lower(),
        "Outcome": record.outcome,
        "DurationMs": EntityProperty(int(record.duration_ms), EdmType.INT64),
        "Detail": json.dumps(record.detail, sort_keys=True),
    }
    if record.from_version is not None:
        entity["FromVersion"] = record.from_version
    if record.to_version is not None:
        entity["ToVersion"] = record.to_version
    return entity


def _record(entity: TableEntity) -> AuditRecord:
    duration = entity.get("DurationMs", 0)
    return AuditRecord(
        record_id=entity["RecordId"],
        at=utc_instant(entity["At"]),
        action=entity["Action"],
        trigger=entity["Trigger"],
        key=entity["Key"],
        outcome=entity["Outcome"],
        from_version=entity.get("FromVersion"),
        to_version=entity.get("ToVersion"),
        duration_ms=int(duration.value if isinstance(duration, EntityProperty) else duration),
        detail=json.loads(entity.get("Detail") or "{}"),
    )
