"""Azure Table Storage's entity size limit, applied before a write because the local Azurite measures it differently.

Azure refuses an entity over 1 MiB (400 EntityTooLarge), measuring it as its documentation's data model describes:
4 bytes, plus 2 bytes per character of PartitionKey and RowKey, plus for each property 8 bytes, 2 per character of
its name and its value's size (a string 2 bytes per character + 4, as UTF-16; binary its length + 4; Int32 4; Int64,
Double and DateTime 8; Guid 16; Boolean 1). Azurite instead compares the UTF-8 JSON of the request with 1 MiB, so it
accepts an entity of, say, 700 000 ASCII characters that Azure refuses (tests/emulators/test_storage_limits.py shows
both). Property limits (64 KiB) Azurite enforces as Azure does; they are not repeated here.

`SizeCheckedTable` is what `LazyTable.ensure()` hands the adapters: the TableClient, with create/upsert/update (and
the entities of a transaction) refused as Azure refuses them, as `InvalidInput` naming the table, like the adapters'
own translation of Azure's 400.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from azure.data.tables import EdmType, EntityProperty, TableClient

from shared.errors import InvalidInput

MAX_ENTITY_BYTES = 1024 * 1024
_EDM_SIZES = {
    EdmType.INT32: 4,
    EdmType.INT64: 8,
    EdmType.DOUBLE: 8,
    EdmType.DATETIME: 8,
    EdmType.GUID: 16,
    EdmType.BOOLEAN: 1,
}
_KEYS = ("PartitionKey", "RowKey")


def _value_size(value: Any) -> int:
    if isinstance(value, EntityProperty):
        if value.edm_type in _EDM_SIZES:
            return _EDM_SIZES[value.edm_type]
        value = value.value
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-16-le")) + 4
    if isinstance(value, bytes | bytearray):
        return len(value) + 4
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | dt.datetime):
        return 8
    if isinstance(value, uuid.UUID):
        return 16
    return 2 * len(str(value)) + 4


def entity_size(entity: Mapping[str, Any]) -> int:
    """The entity's size in bytes as Azure counts it against the 1 MiB limit."""
    size = 4 + 2 * sum(len(str(entity.get(k, ""))) for k in _KEYS)
    for name, value in entity.items():
        if name in _KEYS or name.startswith("odata.") or name == "Timestamp":
            continue
        size += 8 + 2 * len(name) + _value_size(value)
    return size


def check_entity_size(entity: Mapping[str, Any], table: str) -> None:
    """InvalidInput naming the table (Azure's code in the message) when Azure would refuse the entity as too large."""
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES:
        raise InvalidInput(
            f"table {table}",
            f"EntityTooLarge: the entity is {size} bytes as Azure counts it, over the 1 MiB an entity may hold",
        )


class SizeCheckedTable:
    """A TableClient whose writes are refused before they are sent when Azure would refuse them as too large."""

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_entity(self, entity: Mapping[str, Any], **kwargs: Any) -> Any:
        check_entity_size(entity, self._client.table_name)
        return self._client.create_entity(entity, **kwargs)

    def upsert_entity(self, entity: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        check_entity_size(entity, self._client.table_name)
        return self._client.upsert_entity(entity, *args, **kwargs)

    def update_entity(self, entity: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        check_entity_size(entity, self._client.table_name)
        return self._client.update_entity(entity, *args, **kwargs)

    def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> Any:
        operations = list(operations)
        for operation in operations:
            entity = operation[1] if isinstance(operation, tuple | list) and len(operation) > 1 else None
            if isinstance(entity, Mapping) and str(operation[0]).lower().split(".")[-1] != "delete":
                check_entity_size(entity, self._client.table_name)
        return self._client.submit_transaction(operations, **kwargs)
