"""The DekStore port on Table Storage: one entity per DEK, PartitionKey = its shard, RowKey = its id.

Layout (Format 1), pinned by tests/contract/test_dekstore_contract.py:
  PartitionKey, RowKey   shard and DEK id, escaped (shared.azure.tables); readable copies in Partition and DekId
  KeyId                  the versioned KEK id it is wrapped under
  KeyBase, KeyVersion    KeyId's versionless part normalised (shared.model.normalize_key_id) and its version, so
                         count_by_key_id filters one column (rows from before normalisation: lower-cased only)
  Alg, Wrapped, Kcv      wrap algorithm, wrapped bytes (Edm.Binary), key check value
  PreviousKeyId, PreviousWrapped   the copy before the last re-wrap (absent on a DEK never re-wrapped)
  Format                 this layout's number, so a later layout can read old entities
A 4096-bit RSA wrapped value is 512 bytes, twice that with the previous copy: far below the 64 KiB binary limit.

Replace is If-Match on the ETag read (412 -> PreconditionFailed), add an insert (409 -> Conflict). list_page's
continuation is ours (the next RowKey, as base64 JSON, as the audit adapter's), so a page resumes exactly where the
last ended. count_by_key_id selects only KeyId, never the wrapped bytes, but Table Storage has no server-side count
and KeyBase is no key: the service scans every partition and returns one small row per DEK of the key, up to 1,000
per round trip (about 100 round trips for 100,000 DEKs): for status and the retirement guard, not per request.
partitions() reads only PartitionKey of every entity in the table: a full scan, for status pages, not hot paths
(the re-wrap fan-out computes its shards with shared.envelope.sharding instead).
"""

from __future__ import annotations

import dataclasses
from itertools import islice

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, decode_row_token, encode_row_token, unescape_key
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, UnexpectedResponse
from shared.model import PRIVATE_LINK_ALIASES, KeyRef, Page, WrappedDek, normalize_key_id

FORMAT = 1
MAX_PAGE_SIZE = 1000  # Table Storage returns at most 1,000 entities per response


class TableDekStore:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def add(self, dek: WrappedDek) -> WrappedDek:
        entity = to_entity(dek)
        try:
            meta = self._table.ensure().create_entity(entity)
        except ResourceExistsError as exc:
            raise Conflict(f"DEK {dek.partition}/{dek.dek_id} already exists") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK {dek.partition}/{dek.dek_id}", NotFound) from exc
        return _with_etag(dek, meta["etag"])

    def get(self, partition: str, dek_id: str) -> WrappedDek:
        keys = (checked_key("partition", partition), checked_key("dek_id", dek_id))
        try:
            return from_entity(self._table.ensure().get_entity(*keys))
        except ResourceNotFoundError as exc:
            raise NotFound(f"DEK {partition}/{dek_id} not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK {partition}/{dek_id}", NotFound) from exc

    def replace(self, dek: WrappedDek) -> WrappedDek:
        if not dek.etag:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        entity = to_entity(dek)
        try:
            meta = self._table.ensure().update_entity(
                entity, mode=UpdateMode.REPLACE, etag=dek.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError as exc:
            raise PreconditionFailed(f"DEK {dek.partition}/{dek.dek_id} changed since it was read") from exc
        except ResourceNotFoundError as exc:
            raise NotFound(f"DEK {dek.partition}/{dek.dek_id} not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK {dek.partition}/{dek.dek_id}", NotFound) from exc
        return _with_etag(dek, meta["etag"])

    def list_page(self, partition: str, continuation: str | None = None, page_size: int = 100) -> Page:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput("page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        clauses, parameters = ["PartitionKey eq @pk"], {"pk": checked_key("partition", partition)}
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
        return sorted(unescape_key(k) for k in keys)

    def count_by_key_id(self, key: KeyRef) -> dict[str, int]:
        """DEKs per version of `key`, keyed by the normalised versioned id (shared.model.normalize_key_id, M6).

        KeyBase is written normalised, but rows written before were lower-cased only, so any spelling of the vault's
        URL may be stored: the filter asks for every form one vault can take (default port or not, private-link alias
        or not) and each row's KeyId is normalised on read, so one vault's DEKs count as one key however written.
        """
        bases = stored_key_bases(key)
        clause = " or ".join(f"KeyBase eq @b{i}" for i in range(len(bases)))
        counts: dict[str, int] = {}
        try:
            rows = self._table.ensure().query_entities(
                clause, parameters={f"b{i}": b for i, b in enumerate(bases)}, select=["KeyId"]
            )
            for row in rows:
                key_id = normalize_key_id(row["KeyId"])
                counts[key_id] = counts.get(key_id, 0) + 1
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        return counts


def stored_key_bases(key: KeyRef) -> list[str]:
    """Every KeyBase value a DEK of `key` may carry: the normalised base first, then the forms rows written before
    normalisation may hold (lower-cased URL with or without `:443`, under the vault's host or its private-link
    alias)."""
    canonical = key.normalized_id
    scheme, _, rest = canonical.partition("://")
    host, _, path = rest.partition("/")
    hosts = [host]
    for alias, public in PRIVATE_LINK_ALIASES:
        if host.endswith(public):
            hosts.append(host.removesuffix(public) + alias)
    forms = [canonical]
    for h in hosts:
        for netloc in (h, f"{h}:443") if ":" not in h else (h,):  # a host with its own port has no other form
            form = f"{scheme}://{netloc}/{path}"
            if form not in forms:
                forms.append(form)
    return forms


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
