"""The ShardKeyStore port on Table Storage, in its own table (CMK_SHARD_KEY_TABLE), beside the DEK registry.

Layout (Format 1), pinned by tests/contract/test_shardkeys_contract.py:
  PartitionKey   the shard (escaped, as the DEK table's PartitionKey), readable copy in Shard
  RowKey         the generation, zero-padded to 6 digits so rows sort oldest first; the number in Generation
  KekId          the versioned KEK id the shard key is wrapped under; KekVersion its version
  Alg, Wrapped, Kcv   wrap algorithm (RSA-OAEP-256), wrapped bytes (Edm.Binary), key check value
  Created, Migrated   when the generation was made; whether every DEK of the shard is under a shard key
  Format         this layout's number
A key's shard keys are `{prefix}000`..`{prefix}999`: list_prefix reads them with one PartitionKey range query
(`ge {prefix}000 and lt {prefix}:`, `:` sorting right after `9`), at most shards x generations small rows.
"""

from __future__ import annotations

import dataclasses
import re

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import LazyTable, checked_key, escape_key
from shared.envelope import check_shard_key
from shared.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, UnexpectedResponse
from shared.model import ShardKey

FORMAT = 1


class TableShardKeyStore:
    def __init__(self, table: LazyTable) -> None:
        self._table = table

    def add(self, shard_key: ShardKey) -> ShardKey:
        entity = to_entity(shard_key)
        try:
            meta = self._table.ensure().create_entity(entity)
        except ResourceExistsError as exc:
            raise Conflict(f"shard key {_label(shard_key)} already exists") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"shard key {_label(shard_key)}", NotFound) from exc
        return dataclasses.replace(shard_key, etag=meta["etag"])

    def get(self, shard: str, generation: int) -> ShardKey:
        keys = (checked_key("shard", shard), _row_key(generation))
        try:
            return from_entity(self._table.ensure().get_entity(*keys))
        except ResourceNotFoundError as exc:
            raise NotFound(f"shard key {shard}/g{generation} not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"shard key {shard}/g{generation}", NotFound) from exc

    def replace(self, shard_key: ShardKey) -> ShardKey:
        if not shard_key.etag:
            raise InvalidInput("etag", "a replace needs the ETag it read")
        entity = to_entity(shard_key)
        try:
            meta = self._table.ensure().update_entity(
                entity, mode=UpdateMode.REPLACE, etag=shard_key.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError as exc:
            raise PreconditionFailed(f"shard key {_label(shard_key)} changed since it was read") from exc
        except ResourceNotFoundError as exc:
            raise NotFound(f"shard key {_label(shard_key)} not found") from exc
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"shard key {_label(shard_key)}", NotFound) from exc
        return dataclasses.replace(shard_key, etag=meta["etag"])

    def delete(self, shard_key: ShardKey) -> None:
        if not shard_key.etag:
            raise InvalidInput("etag", "a delete needs the ETag it read")
        try:
            self._table.ensure().delete_entity(
                checked_key("shard", shard_key.shard),
                _row_key(shard_key.generation),
                etag=shard_key.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as exc:
            raise PreconditionFailed(f"shard key {_label(shard_key)} changed since it was read") from exc
        except ResourceNotFoundError:
            return
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"shard key {_label(shard_key)}", NotFound) from exc

    def list_shard(self, shard: str) -> list[ShardKey]:
        return self._query("PartitionKey eq @pk", {"pk": checked_key("shard", shard)})

    def list_prefix(self, prefix: str) -> list[ShardKey]:
        if not isinstance(prefix, str) or not prefix:
            raise InvalidInput("prefix", "must be a non-empty string")
        low = escape_key(prefix)
        found = self._query("PartitionKey ge @lo and PartitionKey lt @hi", {"lo": low + "000", "hi": low + ":"})
        pattern = re.compile(re.escape(prefix) + r"\d{3}")
        return [sk for sk in found if pattern.fullmatch(sk.shard)]

    def _query(self, clause: str, parameters: dict) -> list[ShardKey]:
        try:
            rows = list(self._table.ensure().query_entities(clause, parameters=parameters))
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"shard-key table {self._table.name}", NotFound) from exc
        return sorted((from_entity(e) for e in rows), key=lambda sk: (sk.shard, sk.generation))


def _row_key(generation: int) -> str:
    if isinstance(generation, bool) or not isinstance(generation, int) or not 1 <= generation <= 999_999:
        raise InvalidInput("generation", "must be an integer from 1 to 999999")
    return f"{generation:06d}"


def _label(sk: ShardKey) -> str:
    return f"{sk.shard}/g{sk.generation}"


def to_entity(sk: ShardKey) -> dict:
    check_shard_key(sk)
    entity = {
        "PartitionKey": checked_key("shard", sk.shard),
        "RowKey": _row_key(sk.generation),
        "Shard": sk.shard,
        "Generation": sk.generation,
        "KekId": sk.kek_id,
        "KekVersion": sk.kek_version,
        "Alg": sk.algorithm,
        "Wrapped": sk.wrapped,
        "Kcv": sk.kcv,
        "Migrated": bool(sk.migrated),
        "Format": FORMAT,
    }
    if sk.created is not None:
        entity["Created"] = sk.created
    if sk.kek_created is not None:
        entity["KekCreated"] = sk.kek_created
    return entity


def from_entity(entity: TableEntity) -> ShardKey:
    if entity.get("Format") != FORMAT:
        raise UnexpectedResponse(f"shard-key entity {entity.get('PartitionKey')!r}: unknown layout")
    return ShardKey(
        shard=entity["Shard"],
        generation=int(entity["Generation"]),
        kek_id=entity["KekId"],
        algorithm=entity["Alg"],
        wrapped=bytes(entity["Wrapped"]),
        kcv=entity["Kcv"],
        created=entity.get("Created"),
        migrated=bool(entity.get("Migrated", False)),
        etag=entity.metadata["etag"],
        kek_created=entity.get("KekCreated"),
    )
