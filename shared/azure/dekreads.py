"""What TableDekStore reads and repairs beside its DEK rows: the counters, their daily reconciliation against a scan,
the retirement guard's bounded probe, and the quarantine (row layouts in shared.azure.dekcounts)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.azure.dekcounts import (
    META_PARTITION,
    counter_counts,
    counter_entity,
    counter_key,
    directory_key,
    directory_shards,
    quarantine_count_key,
    quarantine_entity,
    quarantine_from,
    quarantine_key,
    quarantine_prefix,
    range_clause,
    range_parameters,
    split_counted,
    versioned,
)
from shared.azure.errors import SDK_ERRORS, translate_error
from shared.azure.tables import checked_key, unescape_key
from shared.envelope import QuarantinedDek
from shared.errors import NotFound, ServiceUnavailable, UnexpectedResponse
from shared.model import PRIVATE_LINK_ALIASES, KeyRef, normalize_key_id

RECONCILE_ATTEMPTS = 3
MAX_PARALLEL_READS = 16


class CounterReads:
    """Mixed into TableDekStore: needs `_table` (a LazyTable) and `_known` (its counter cache)."""

    _table: Any
    _known: dict

    def _list_in_directory(self, base: str, pk: str, partition: str) -> None: ...

    def shard_counts(self, key: KeyRef) -> dict[str, dict[str, int]]:
        """Shard -> {normalised versioned id: DEKs} from `key`'s counters: a range query and one read per shard."""
        base = key.normalized_id
        shards = self._directory(base)
        if len(shards) > 1:  # the point reads at once: a status costs one round trip's time, not one per shard
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(shards))) as pool:
                read = list(pool.map(lambda shard: self._read_counter(shard[0], base), shards))
        else:
            read = [self._read_counter(pk, base) for pk, _ in shards]
        return {
            partition: versioned(base, counts)
            for (_, partition), (etag, counts) in zip(shards, read, strict=True)
            if etag is not None
        }

    def reconcile(self, key: KeyRef) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """Compare `key`'s counters with a scan of its DEK rows and correct any that differ: shard -> (counted,
        found) for each one corrected (empty: no drift). A correction is If-Match on the counter read before its
        shard was scanned, so a write racing it makes it look again instead of overwriting a newer count."""
        base = key.normalized_id
        counted = self.shard_counts(key)
        found = self._scan(key)
        drift = {}
        for partition in sorted(set(counted) | set(found)):
            if counted.get(partition, {}) == found.get(partition, {}):
                continue
            for _ in range(RECONCILE_ATTEMPTS):
                pk = _pk(partition)
                etag, counts = self._read_counter(pk, base)
                now = self._scan(key, pk).get(partition, {})
                if versioned(base, counts) == now:
                    break  # a write in between had it right
                versions = {split_counted(k)[2]: n for k, n in now.items()}
                entity = counter_entity(pk, partition, base, versions)
                try:
                    if etag is None:
                        self._list_in_directory(base, pk, partition)
                        self._table.ensure().create_entity(entity)
                    else:
                        self._table.ensure().update_entity(
                            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                        )
                except (ResourceExistsError, ResourceModifiedError):
                    continue
                except SDK_ERRORS as exc:
                    raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
                self._known.pop((pk, base), None)
                drift[partition] = (versioned(base, counts), now)
                break
        return drift

    def probe(self, key_id: str) -> bool:
        """Whether one bounded query (its first response only, one row asked) finds a DEK wrapped under `key_id`:
        the retirement guard's check that the counters have not missed one. Never follows a continuation."""
        base, _, version = normalize_key_id(key_id).rpartition("/")
        bases = stored_key_bases(KeyRef(base.rpartition("/keys/")[0], base.rpartition("/keys/")[2]))
        clause = " or ".join(f"KeyBase eq @b{i}" for i in range(len(bases)))
        versions = sorted({version, key_id.rstrip("/").rpartition("/")[2]})
        vclause = " or ".join(f"KeyVersion eq @v{i}" for i in range(len(versions)))
        parameters = {f"b{i}": b for i, b in enumerate(bases)} | {f"v{i}": v for i, v in enumerate(versions)}
        try:
            pages = (
                self._table.ensure()
                .query_entities(
                    f"( {clause} ) and ( {vclause} )",
                    parameters=parameters,
                    select=["PartitionKey"],
                    results_per_page=1,
                )
                .by_page()
            )
            return any(True for _ in next(pages, []))
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc

    def quarantine(self, entry: QuarantinedDek) -> bool:
        """Record `entry`; False when that DEK was already quarantined (so its alert went out already)."""
        return self._quarantine_step(entry.key_base, ("create", quarantine_entity(entry)), +1)

    def quarantined(self, key: KeyRef) -> list[QuarantinedDek]:
        """One point read when none is quarantined (the usual case); the entries by a range query otherwise."""
        if not self._quarantine_count(key.normalized_id)[1]:
            return []
        prefix = quarantine_prefix(key.normalized_id)
        try:
            rows = self._table.ensure().query_entities(range_clause(prefix), parameters=range_parameters(prefix))
            return [quarantine_from(r) for r in rows]
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc

    def release(self, key: KeyRef, partition: str, dek_id: str) -> bool:
        """Take a DEK out of quarantine; False when it was not in it."""
        row = {"PartitionKey": META_PARTITION, "RowKey": quarantine_key(key.normalized_id, partition, dek_id)}
        return self._quarantine_step(key.normalized_id, ("delete", row), -1)

    def _quarantine_step(self, base: str, operation: tuple, step: int) -> bool:
        """An entry's insert or delete and the key's quarantine count, in one transaction; False when the entry
        was already there (insert) or already gone (delete)."""
        for _ in range(RECONCILE_ATTEMPTS * 5):
            etag, count = self._quarantine_count(base)
            entity = {
                "PartitionKey": META_PARTITION,
                "RowKey": quarantine_count_key(base),
                "Count": max(0, count + step),
            }
            condition = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
            counting = ("create", entity) if etag is None else ("update", entity, condition)
            try:
                self._table.ensure().submit_transaction([operation, counting])
                return True
            except TableTransactionError as exc:
                if exc.index == 0 and exc.status_code in (404, 409):
                    return False
                if exc.status_code not in (409, 412):
                    raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
            except SDK_ERRORS as exc:
                raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        raise ServiceUnavailable(f"DEK table {self._table.name}: the quarantine of {base} is contended; try again")

    def _quarantine_count(self, base: str) -> tuple[str | None, int]:
        try:
            row = self._table.ensure().get_entity(META_PARTITION, quarantine_count_key(base))
        except ResourceNotFoundError:
            return None, 0
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        return row.metadata["etag"], int(row.get("Count") or 0)

    # ---- reads ------------------------------------------------------------------------------------------------
    def _read_counter(self, pk: str, base: str) -> tuple[str | None, dict[str, int]]:
        try:
            entity = self._table.ensure().get_entity(pk, counter_key(base))
        except ResourceNotFoundError:
            return None, {}
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        try:
            return entity.metadata["etag"], counter_counts(entity)
        except ValueError as exc:
            raise UnexpectedResponse(str(exc)) from None

    def _directory(self, base: str) -> list[tuple[str, str]]:
        """(escaped shard, shard) of every shard holding a counter of the key: one point read."""
        try:
            row = self._table.ensure().get_entity(META_PARTITION, directory_key(base))
        except ResourceNotFoundError:
            return []
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        try:
            return sorted(directory_shards(row).items())
        except ValueError as exc:
            raise UnexpectedResponse(str(exc)) from None

    def _scan(self, key: KeyRef, pk: str | None = None) -> dict[str, dict[str, int]]:
        """Shard -> {normalised versioned id: DEKs} by reading every DEK row of `key` (in `pk` only when given)."""
        bases = stored_key_bases(key)
        # A DEK under a shard key has KeyBase `{kek}/shards/{shard}` (written normalised): one range takes them all.
        clause = "( " + " or ".join(f"KeyBase eq @b{i}" for i in range(len(bases))) + " or "
        clause += "( KeyBase ge @slo and KeyBase lt @shi ) )"
        parameters = {f"b{i}": b for i, b in enumerate(bases)}
        parameters |= {"slo": f"{bases[0]}/shards/", "shi": f"{bases[0]}/shards0"}
        if pk is not None:
            clause, parameters["pk"] = f"PartitionKey eq @pk and {clause}", pk
        out: dict[str, dict[str, int]] = {}
        try:
            for row in self._table.ensure().query_entities(
                clause, parameters=parameters, select=["PartitionKey", "KeyId"]
            ):
                counts = out.setdefault(unescape_key(row["PartitionKey"]), {})
                key_id = normalize_key_id(row["KeyId"])
                counts[key_id] = counts.get(key_id, 0) + 1
        except SDK_ERRORS as exc:
            raise translate_error(exc, f"DEK table {self._table.name}", NotFound) from exc
        return out


def _pk(partition: str) -> str:
    return checked_key("partition", partition)


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
