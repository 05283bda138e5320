"""The DekStore port on Table Storage: one entity per DEK, PartitionKey = its shard, RowKey = its id, and beside
them the counters that make counting a key's DEKs constant work (shared.azure.dekcounts).

Layout (Format 1), pinned by tests/contract/test_dekstore_contract.py:
  PartitionKey, RowKey   shard and DEK id, escaped (shared.azure.tables); readable copies in Partition and DekId
  KeyId                  the versioned KEK id it is wrapped under
  KeyBase, KeyVersion    KeyId's versionless part normalised (shared.model.normalize_key_id) and its version, so
                         count_by_key_id filters one column (rows from before normalisation: lower-cased only)
  Alg, Wrapped, Kcv      wrap algorithm, wrapped bytes (Edm.Binary), key check value
  PreviousKeyId, PreviousWrapped   the copy before the last re-wrap (absent on a DEK never re-wrapped)
  Format                 this layout's number, so a later layout can read old entities
A 4096-bit RSA wrapped value is 512 bytes, twice that with the previous copy: far below the 64 KiB binary limit.

Every write of DEK rows (add, add_many, replace, replace_many, delete) is one entity-group transaction with the
shard's counter row of each key it changes, If-Match on the counter's ETag: the rows and their count change
together or not at all, so a crash between two calls, or two writers racing, can never leave a count off. A lost
race on the counter (412) re-reads it and tries again; a DEK's own 412 / 409 is the caller's, as before. The
counter's last ETag is remembered per process, so an uncontended writer spends one round trip per write.

Replace is If-Match on the ETag read (412 -> PreconditionFailed), add an insert (409 -> Conflict). list_page's
continuation is ours (the next RowKey, as base64 JSON, as the audit adapter's), so a page resumes exactly where the
last ended, and it never lists a counter row. shard_counts reads the key's directory (one range query) and one
counter row per shard. count_by_key_id is the scan it replaces: it selects only KeyId, but Table Storage has no
server-side count and KeyBase is no key, so it reads one small row per DEK of the key, up to 1,000 per round trip;
only the daily reconciliation (and tests) use it. partitions() reads every entity's PartitionKey: tests only.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from itertools import islice

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode

from shared.azure.dekcounts import (
    META_PARTITION,
    RESERVED_END,
    RESERVED_PREFIX,
    counter_entity,
    deltas,
    directory_entity,
    directory_key,
    directory_shards,
)
from shared.azure.dekreads import CounterReads, stored_key_bases
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, decode_row_token, encode_row_token, unescape_key
from shared.errors import (
    CmkError,
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    UnexpectedResponse,
)
from shared.model import KeyRef, Page, WrappedDek, normalize_key_id

__all__ = ["MAX_BATCH_DEKS", "TableDekStore", "from_entity", "stored_key_bases", "to_entity"]

FORMAT = 1
MAX_PAGE_SIZE = 1000  # Table Storage returns at most 1,000 entities per response


MAX_BATCH = 100  # Azure Tables: at most 100 operations in one entity-group transaction
MAX_BATCH_DEKS = 90  # DEK rows per transaction, leaving room for their keys' counter rows
COUNTER_ATTEMPTS = 16  # lost races on one counter before the write gives up (ServiceUnavailable: retried later)


class _DekOpFailed(Exception):
    """The transaction failed on a DEK row's own operation (not its counter): `index` into the DEK operations."""

    def __init__(self, index: int, status: int | None) -> None:
        super().__init__(index, status)
        self.index, self.status = index, status


class TableDekStore(CounterReads):
    def __init__(self, table: LazyTable) -> None:
        self._table = table
        self._known: dict[tuple[str, str], tuple[str | None, dict[str, int]]] = {}  # (pk, base) -> (ETag, counts)
        self._listed: set[tuple[str, str]] = set()  # (base, pk) this process saw in the key's directory
        self._lock = threading.Lock()

    def add(self, dek: WrappedDek) -> WrappedDek:
        return self.add_many([dek])[0]

    def add_many(self, deks: Sequence[WrappedDek]) -> list[WrappedDek]:
        """Insert DEKs of one partition (at most MAX_BATCH_DEKS) with their count, all or none; Conflict when one
        exists. What a bulk seed uses: one round trip per batch instead of one per DEK."""
        deks = list(deks)
        pk = _one_partition(deks)
        ops = [("create", to_entity(d)) for d in deks]
        try:
            metas = self._transact(pk, deks[0].partition, ops, deltas((None, d.key_id) for d in deks))
        except _DekOpFailed as failed:
            dek = deks[failed.index]
            if failed.status == 409:
                raise Conflict(f"DEK {dek.partition}/{dek.dek_id} already exists") from None
            raise UnexpectedResponse(f"DEK {dek.partition}/{dek.dek_id}: insert refused ({failed.status})") from None
        return [_with_etag(d, m["etag"]) for d, m in zip(deks, metas, strict=True)]

    def get(self, partition: str, dek_id: str) -> WrappedDek:
        keys = (checked_key("partition", partition), checked_key("dek_id", dek_id))
        try:
            return from_entity(self._table.ensure().get_entity(*keys))
        except ResourceNotFoundError as exc:
            raise NotFound(f"DEK {partition}/{dek_id} not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK {partition}/{dek_id}", NotFound) from exc

    def replace(self, dek: WrappedDek) -> WrappedDek:
        """If `dek.etag` still matches. The stored row is read first: its key id is what the counter moves from."""
        if not dek.etag:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        to_entity(dek)  # refuse what Azure would not hold before reading anything
        stored = self.get(dek.partition, dek.dek_id)
        if stored.etag != dek.etag:
            raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read")
        result = self.replace_many([(stored, dek)])[0]
        if isinstance(result, CmkError):
            raise result
        return result

    def replace_many(self, changes: Sequence[tuple[WrappedDek, WrappedDek]]) -> list[WrappedDek | CmkError]:
        """(as read, replacement) pairs of one partition, written If-Match on each read's ETag in one transaction
        with their counters. A DEK that changed or went meanwhile gets its error in its place (PreconditionFailed,
        NotFound) and the others are written without it."""
        changes = list(changes)
        pk = _one_partition([new for _, new in changes])
        outcomes: list[WrappedDek | CmkError | None] = [None] * len(changes)
        live = list(range(len(changes)))
        while live:
            ops = [
                ("update", to_entity(changes[i][1]), {
                    "mode": UpdateMode.REPLACE, "etag": _etag(changes[i][0]),
                    "match_condition": MatchConditions.IfNotModified,
                })
                for i in live
            ]  # fmt: skip
            moves = deltas((changes[i][0].key_id, changes[i][1].key_id) for i in live)
            try:
                metas = self._transact(pk, changes[0][1].partition, ops, moves)
            except _DekOpFailed as failed:
                i = live.pop(failed.index)
                dek = changes[i][1]
                error, what = {
                    404: (NotFound, "not found"),
                    412: (PreconditionFailed, "changed since it was read"),
                }.get(failed.status or 0, (UnexpectedResponse, f"refused by the table ({failed.status})"))
                outcomes[i] = error(f"DEK {dek.partition}/{dek.dek_id} {what}")
                continue
            for i, meta in zip(live, metas, strict=True):
                outcomes[i] = _with_etag(changes[i][1], meta["etag"])
            break
        return [o for o in outcomes if o is not None]

    def delete(self, dek: WrappedDek) -> None:
        """Delete `dek` if its ETag still matches (PreconditionFailed; NotFound when gone), its count with it."""
        keys = {"PartitionKey": checked_key("partition", dek.partition), "RowKey": checked_key("dek_id", dek.dek_id)}
        ops = [("delete", keys, {"etag": _etag(dek), "match_condition": MatchConditions.IfNotModified})]
        try:
            self._transact(ops[0][1]["PartitionKey"], dek.partition, ops, deltas([(dek.key_id, None)]))
        except _DekOpFailed as failed:
            if failed.status == 404:
                raise NotFound(f"DEK {dek.partition}/{dek.dek_id} not found") from None
            raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read") from None

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        clauses = ["PartitionKey eq @pk", "( RowKey lt @reserved or RowKey ge @past )"]  # never a counter row
        parameters = {"pk": checked_key("partition", partition), "reserved": RESERVED_PREFIX, "past": RESERVED_END}
        if continuation:
            clauses.append("RowKey ge @start")
            parameters["start"] = decode_token(continuation)
        try:
            entities = self._table.ensure().query_entities(
                " and ".join(clauses), parameters=parameters, results_per_page=min(page_size + 1, MAX_PAGE_SIZE)
            )
            rows = list(islice(entities, page_size + 1))  # one more than asked tells whether another page exists
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        token = encode_token(rows[page_size]["RowKey"]) if len(rows) > page_size else None
        return Page(tuple(from_entity(e) for e in rows[:page_size]), token)

    def partitions(self) -> list[str]:
        try:
            keys = {e["PartitionKey"] for e in self._table.ensure().list_entities(select=["PartitionKey"])}
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        return sorted(unescape_key(k) for k in keys if k != META_PARTITION)

    def count_by_key_id(self, key: KeyRef) -> dict[str, int]:
        """DEKs per version of `key`, keyed by the normalised versioned id (shared.model.normalize_key_id, M6), by a
        scan of the DEK rows: what the counters are reconciled against (shard_counts is what readers use).

        KeyBase is written normalised, but rows written before were lower-cased only, so any spelling of the vault's
        URL may be stored: the filter asks for every form one vault can take (default port or not, private-link alias
        or not) and each row's KeyId is normalised on read, so one vault's DEKs count as one key however written.
        """
        counts: dict[str, int] = {}
        for per_shard in self._scan(key).values():
            for key_id, n in per_shard.items():
                if "/shards/" not in key_id:  # under a shard key: on no KEK version itself
                    counts[key_id] = counts.get(key_id, 0) + n
        return counts

    # ---- counters ---------------------------------------------------------------------------------------------
    def _transact(self, pk: str, partition: str, dek_ops: list, changes: dict[str, dict[str, int]]) -> list:
        """`dek_ops` and the counter updates `changes` ({base: {version: delta}}) in one transaction; the DEK ops'
        results. A lost race on a counter re-reads it and retries; a DEK op's failure is _DekOpFailed."""
        for attempt in range(COUNTER_ATTEMPTS):
            counter_ops, states = [], []
            for base, change in changes.items():
                etag, counts = self._counter(pk, base, refresh=attempt > 0)
                if etag is None:
                    self._list_in_directory(base, pk, partition)
                updated = dict(counts)
                for version, step in change.items():
                    # Clamped at zero: a DEK written before counters existed, moved or deleted, takes nothing
                    # below zero; the daily reconciliation counts it in.
                    updated[version] = max(0, updated.get(version, 0) + step)
                entity = counter_entity(pk, partition, base, updated)
                condition = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
                counter_ops.append(("create", entity) if etag is None else ("update", entity, condition))
                states.append((base, {v: n for v, n in updated.items() if n}))
            try:
                metas = self._table.ensure().submit_transaction(dek_ops + counter_ops)
            except TableTransactionError as exc:
                if exc.index < len(dek_ops) and exc.status_code not in (429, 500, 503):
                    raise _DekOpFailed(exc.index, exc.status_code) from None
                if exc.status_code not in (409, 412):
                    raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
                continue  # another writer moved a counter first: read it again
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
            with self._lock:
                for (base, counts), meta in zip(states, metas[len(dek_ops) :], strict=True):
                    self._known[(pk, base)] = (meta["etag"], counts)
            return list(metas[: len(dek_ops)])
        raise ServiceUnavailable(f"DEK table {self._table.name}: shard {partition}'s counter is contended; try again")

    def _counter(self, pk: str, base: str, *, refresh: bool) -> tuple[str | None, dict[str, int]]:
        with self._lock:
            known = self._known.get((pk, base))
        if known is not None and not refresh:
            return known
        state = self._read_counter(pk, base)
        with self._lock:
            self._known[(pk, base)] = state
        return state

    def _list_in_directory(self, base: str, pk: str, partition: str) -> None:
        """Add `pk` to the key's directory row (If-Match: two first writers of two shards both land)."""
        if (base, pk) in self._listed:
            return
        table = self._table.ensure()
        for _ in range(COUNTER_ATTEMPTS):
            try:
                try:
                    row = table.get_entity(META_PARTITION, directory_key(base))
                    etag, shards = row.metadata["etag"], directory_shards(row)
                except ResourceNotFoundError:
                    etag, shards = None, {}
                if pk not in shards:
                    entity = directory_entity(base, {**shards, pk: partition})
                    if etag is None:
                        table.create_entity(entity)
                    else:
                        table.update_entity(
                            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                        )
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another shard's first writer: read it again
            except ValueError as exc:
                raise UnexpectedResponse(str(exc)) from None
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
            with self._lock:
                self._listed.add((base, pk))
            return
        raise ServiceUnavailable(f"DEK table {self._table.name}: the directory of {base} is contended; try again")


def _one_partition(deks: Sequence[WrappedDek]) -> str:
    if not deks:
        raise InvalidInput("deks", "must name at least one DEK")
    if len(deks) > MAX_BATCH_DEKS:
        raise InvalidInput("deks", f"at most {MAX_BATCH_DEKS} in one write")
    if len({d.partition for d in deks}) != 1:
        raise InvalidInput("partition", "one write holds DEKs of one partition only")
    if len({d.dek_id for d in deks}) != len(deks):
        raise InvalidInput("dek_id", "a DEK appears twice in one write")
    return checked_key("partition", deks[0].partition)


def _etag(dek: WrappedDek) -> str:
    if not dek.etag:
        raise InvalidInput("etag", "a replace or delete needs the ETag it read")
    return dek.etag


def to_entity(dek: WrappedDek) -> dict:
    base, _, version = dek.key_id.rstrip("/").rpartition("/")
    if "/keys/" not in base or not version:
        raise InvalidInput("key_id", "must be a versioned key id (https://{vault}/keys/{name}/{version})")
    if not isinstance(dek.wrapped, bytes) or not dek.wrapped:
        raise InvalidInput("wrapped", "must be non-empty bytes")
    if (dek.previous_key_id is None) != (dek.previous_wrapped is None):
        raise InvalidInput("previous_wrapped", "previous_key_id and previous_wrapped go together")
    entity = {
        "PartitionKey": checked_key("partition", dek.partition),
        "RowKey": checked_key("dek_id", dek.dek_id),
        "Partition": dek.partition,
        "DekId": dek.dek_id,
        "KeyId": dek.key_id,
        "KeyBase": normalize_key_id(base),
        "KeyVersion": version,
        "Alg": dek.algorithm,
        "Wrapped": dek.wrapped,
        "Kcv": dek.kcv,
        "Format": FORMAT,
    }
    if dek.previous_key_id is not None:
        entity["PreviousKeyId"] = dek.previous_key_id
        entity["PreviousWrapped"] = dek.previous_wrapped
    return entity


def from_entity(entity: TableEntity) -> WrappedDek:
    if entity.get("Format") != FORMAT:
        raise UnexpectedResponse(f"DEK entity {entity.get('RowKey')!r}: unknown layout {entity.get('Format')!r}")
    return WrappedDek(
        partition=entity["Partition"],
        dek_id=entity["DekId"],
        key_id=entity["KeyId"],
        algorithm=entity["Alg"],
        wrapped=bytes(entity["Wrapped"]),
        kcv=entity["Kcv"],
        previous_key_id=entity.get("PreviousKeyId"),
        previous_wrapped=bytes(entity["PreviousWrapped"]) if entity.get("PreviousWrapped") is not None else None,
        etag=entity.metadata["etag"],
    )


def encode_token(start_row: str) -> str:
    return encode_row_token(start_row)


def decode_token(token: str) -> str:
    return decode_row_token(token, store="DEK store")


def _with_etag(dek: WrappedDek, etag: str) -> WrappedDek:
    return dataclasses.replace(dek, etag=etag)
