"""The revocation ledger on Table Storage.

Two kinds of row in one table: the revocation itself (PartitionKey `revocation`, RowKey its id, the whole record as
JSON in `Document`), and its subject's active marker (PartitionKey `active`, RowKey the subject, pointing at the id).
The record is written first, then the marker by an insert that fails on conflict: of two identical requests exactly
one opens a revocation, and a marker never points at a record that was never written. A crash between the two leaves
a record no marker names, which nothing treats as active.
"""

from __future__ import annotations

import dataclasses
import json

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, unescape_key
from shared.errors import NotFound, PreconditionFailed, ServiceUnavailable
from shared.revocation import Revocation, check_revocation_id

RECORDS = "revocation"
ACTIVE = "active"
MAX_DOCUMENT_CHARS = 30_000  # a string property holds 32K UTF-16 units
MAX_ROUNDS = 8


class TableRevocations:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def _markers(self) -> dict[str, str]:
        # Reads never create the table (a GET must change nothing): a table not there yet holds no revocation.
        try:
            rows = self._table.client.query_entities(
                "PartitionKey eq @pk", parameters={"pk": ACTIVE}, select=["RowKey", "RevocationId"]
            )
            return {unescape_key(row["RowKey"]): row["RevocationId"] for row in rows}
        except ResourceNotFoundError:
            return {}
        except SDK_ERRORS as exc:
            raise translate_error(exc, "the revocation ledger", NotFound) from exc

    def revoked(self, key: str) -> set[str]:
        prefix = f"access|{key.lower()}|"
        return {subject[len(prefix) :] for subject in self._markers() if subject.startswith(prefix)}

    def shredded(self, key: str) -> str | None:
        return self._markers().get(f"disable|{key.lower()}")

    def open(self, revocation: Revocation) -> tuple[Revocation, bool]:
        client = self._table.ensure()
        marker = {
            "PartitionKey": ACTIVE,
            "RowKey": checked_key("subject", revocation.subject),
            "RevocationId": revocation.revocation_id,
        }
        for _ in range(MAX_ROUNDS):
            try:
                meta = client.upsert_entity(_entity(revocation), mode=UpdateMode.REPLACE)
                try:
                    client.create_entity(marker)
                    return _with_etag(revocation, meta["etag"]), True
                except ResourceExistsError:
                    pass
                try:
                    existing_id = client.get_entity(ACTIVE, marker["RowKey"])["RevocationId"]
                except ResourceNotFoundError:
                    continue  # closed between our insert and our read: open again
                if existing_id == revocation.revocation_id:
                    return _with_etag(revocation, meta["etag"]), True  # our insert landed; its reply was lost
                client.delete_entity(RECORDS, revocation.revocation_id)  # not ours to keep: the subject has one
                return self.get(existing_id), False
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"revocation {revocation.revocation_id}", NotFound) from exc
        raise ServiceUnavailable(f"revocation of {revocation.subject}: still contended after {MAX_ROUNDS} rounds")

    def get(self, revocation_id: str) -> Revocation:
        check_revocation_id(revocation_id)
        try:
            entity = self._table.client.get_entity(RECORDS, revocation_id)
        except ResourceNotFoundError:
            raise NotFound(f"revocation {revocation_id} was never recorded") from None
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocation {revocation_id}", NotFound) from exc
        return Revocation.from_json(json.loads(entity["Document"]), etag=entity.metadata["etag"])

    def update(self, revocation: Revocation) -> Revocation:
        if not revocation.etag:
            raise PreconditionFailed(f"revocation {revocation.revocation_id}: not one this ledger handed out")
        try:
            meta = self._table.ensure().update_entity(
                _entity(revocation),
                mode=UpdateMode.REPLACE,
                etag=revocation.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise PreconditionFailed(f"revocation {revocation.revocation_id}: changed meanwhile") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocation {revocation.revocation_id}", NotFound) from exc
        return _with_etag(revocation, meta["etag"])

    def close(self, revocation: Revocation) -> None:
        client = self._table.ensure()
        row = checked_key("subject", revocation.subject)
        try:
            marker = client.get_entity(ACTIVE, row)
            if marker["RevocationId"] != revocation.revocation_id:
                return  # a later revocation of the same subject: not ours to close
            client.delete_entity(
                ACTIVE, row, etag=marker.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"revocation {revocation.revocation_id}", NotFound) from exc

    def active(self) -> list[Revocation]:
        found = []
        for revocation_id in self._markers().values():
            try:
                found.append(self.get(revocation_id))
            except NotFound:
                continue
        return found


def _entity(revocation: Revocation) -> dict:
    document = json.dumps(revocation.to_json(), sort_keys=True)
    if len(document) > MAX_DOCUMENT_CHARS:
        trimmed = {**revocation.to_json(), "plan": {"_truncated": True, "summary": revocation.plan.get("summary")}}
        document = json.dumps(trimmed, sort_keys=True)
    return {
        "PartitionKey": RECORDS,
        "RowKey": check_revocation_id(revocation.revocation_id),
        "Key": revocation.key,
        "State": revocation.state.value,
        "Document": document,
    }


def _with_etag(revocation: Revocation, etag: str) -> Revocation:
    return dataclasses.replace(revocation, etag=etag)
