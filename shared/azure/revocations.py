"""The revocation ledger on Table Storage.

Two kinds of row in one table: the revocation itself (PartitionKey `revocation`, RowKey its id, the whole record as
JSON in `Document`), and its subject's active marker (PartitionKey `active`, RowKey the subject, pointing at the id).
The record is written first, then the marker by an insert that fails on conflict: of two identical requests exactly
one opens a revocation, and a marker never points at a record that was never written. A crash between the two leaves
a record no marker names, which nothing treats as active.

A record is stored whole, however large its plan (restoration re-creates every removed assignment from it): its JSON
is cut into string properties of at most CHUNK_CHARS (a property holds 64 KiB), up to CHUNKS_PER_ROW of them in the
record's row (an entity holds 1 MiB), the rest in overflow rows of the same partition, RowKey
`{id}~{generation}~{n}`. Overflow rows are written before the record's row, under a generation that row then names:
an ETag-guarded update that loses its race leaves only rows nobody names, and a reader never mixes two generations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, unescape_key
from shared.errors import NotFound, PreconditionFailed, ServiceUnavailable
from shared.revocation import Revocation, check_record_size, check_revocation_id

RECORDS = "revocation"
ACTIVE = "active"
CHUNK_CHARS = 30_000  # ASCII JSON (json.dumps escapes the rest): 60,000 bytes in UTF-16, below a property's 64 KiB
CHUNKS_PER_ROW = 15  # 900,000 bytes of chunks, below an entity's 1 MiB with the other properties
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
                meta = self._write(revocation)
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
                self._delete_record(revocation.revocation_id)  # not ours to keep: the subject has one
                return self.get(existing_id), False
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"revocation {revocation.revocation_id}", NotFound) from exc
        raise ServiceUnavailable(f"revocation of {revocation.subject}: still contended after {MAX_ROUNDS} rounds")

    def get(self, revocation_id: str) -> Revocation:
        check_revocation_id(revocation_id)
        for _ in range(MAX_ROUNDS):
            try:
                entity = self._table.client.get_entity(RECORDS, revocation_id)
            except ResourceNotFoundError:
                raise NotFound(f"revocation {revocation_id} was never recorded") from None
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"revocation {revocation_id}", NotFound) from exc
            try:
                document = self._document(entity)
            except ResourceNotFoundError:
                continue  # rewritten between our two reads (its old overflow rows went): read it again
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"revocation {revocation_id}", NotFound) from exc
            return Revocation.from_json(json.loads(document), etag=entity.metadata["etag"])
        raise ServiceUnavailable(f"revocation {revocation_id}: still being rewritten after {MAX_ROUNDS} reads")

    def _document(self, entity) -> str:
        """The record's JSON, from its row and the overflow rows of the generation that row names."""
        if "Document" in entity:  # a record written before records were split
            return entity["Document"]
        parts = int(entity["Parts"])
        chunks = [entity[f"Document{i}"] for i in range(min(parts, CHUNKS_PER_ROW))]
        for row in range(1, -(-parts // CHUNKS_PER_ROW)):
            overflow = self._table.client.get_entity(
                RECORDS, _overflow_key(entity["RowKey"], entity["Generation"], row)
            )
            count = min(parts - row * CHUNKS_PER_ROW, CHUNKS_PER_ROW)
            chunks += [overflow[f"Document{i}"] for i in range(count)]
        return "".join(chunks)

    def _write(self, revocation: Revocation, etag: str | None = None) -> dict:
        """Overflow rows first, then the record's row (replaced, or ETag-guarded when `etag` is given), then the
        previous generation's overflow rows go (best effort: a row left over is named by nothing)."""
        client = self._table.ensure()
        row, overflow = _entities(revocation)
        for entity in overflow:
            client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        previous = None
        with contextlib.suppress(ResourceNotFoundError):
            previous = client.get_entity(RECORDS, row["RowKey"])
        try:
            if etag is None:
                meta = client.upsert_entity(row, mode=UpdateMode.REPLACE)
            else:
                meta = client.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except SDK_ERRORS:
            for entity in overflow:  # named by nothing now; best effort, so the table does not collect them
                with contextlib.suppress(*SDK_ERRORS):
                    client.delete_entity(RECORDS, entity["RowKey"])
            raise
        if previous is not None:
            self._drop_overflow(previous, keep=row["Generation"])
        return meta

    def _drop_overflow(self, entity, keep: str | None = None) -> None:
        generation = entity.get("Generation")
        if not generation or generation == keep:
            return
        for row in range(1, -(-int(entity.get("Parts", 0)) // CHUNKS_PER_ROW)):
            with contextlib.suppress(*SDK_ERRORS):
                self._table.client.delete_entity(RECORDS, _overflow_key(entity["RowKey"], generation, row))

    def _delete_record(self, revocation_id: str) -> None:
        client = self._table.client
        with contextlib.suppress(ResourceNotFoundError):
            self._drop_overflow(client.get_entity(RECORDS, revocation_id))
        client.delete_entity(RECORDS, revocation_id)

    def update(self, revocation: Revocation) -> Revocation:
        if not revocation.etag:
            raise PreconditionFailed(f"revocation {revocation.revocation_id}: not one this ledger handed out")
        try:
            meta = self._write(revocation, etag=revocation.etag)
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


def _overflow_key(row_key: str, generation: str, row: int) -> str:
    return f"{row_key}~{generation}~{row}"


def _entities(revocation: Revocation) -> tuple[dict, list[dict]]:
    """(the record's row, its overflow rows): the JSON whole, cut into chunks a property and an entity hold."""
    document = json.dumps(revocation.to_json(), sort_keys=True)  # ASCII: every character one UTF-16 unit
    check_record_size(document)
    chunks = [document[i : i + CHUNK_CHARS] for i in range(0, len(document), CHUNK_CHARS)] or [""]
    row_key = check_revocation_id(revocation.revocation_id)
    generation = uuid.uuid4().hex
    rows = [chunks[i : i + CHUNKS_PER_ROW] for i in range(0, len(chunks), CHUNKS_PER_ROW)]
    record = {
        "PartitionKey": RECORDS,
        "RowKey": row_key,
        "Key": revocation.key,
        "State": revocation.state.value,
        "Parts": len(chunks),
        "Generation": generation,
        **{f"Document{i}": chunk for i, chunk in enumerate(rows[0])},
    }
    overflow = [
        {
            "PartitionKey": RECORDS,
            "RowKey": _overflow_key(row_key, generation, n),
            **{f"Document{i}": chunk for i, chunk in enumerate(part)},
        }
        for n, part in enumerate(rows[1:], start=1)
    ]
    return record, overflow


def _with_etag(revocation: Revocation, etag: str) -> Revocation:
    return dataclasses.replace(revocation, etag=etag)
