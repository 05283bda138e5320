"""Moving one budget grant of a page's DEKs: each unwrapped, KCV-checked and wrapped under the target (concurrently:
every DEK is independent), then all written in one transaction with their shard's counter (one counter update per
grant rather than ten writers racing for one row). A crash anywhere leaves each DEK wrapped under a version that still
works: the write is the last step, all or nothing. A DEK another worker wrote first (412) is re-read and moved alone,
only while it is still behind the target and the target is still current (L2): never from a newer version back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.rewrap.messages import RewrapMessage
from shared.envelope import rewrapped, unwrap_checked
from shared.errors import CmkError, NotFound, PreconditionFailed, ServiceUnavailable, Throttled
from shared.model import WrappedDek, same_key_id
from shared.ports import DekStore, KeyVault

TRANSIENT = (Throttled, ServiceUnavailable)


def move_grant(deks: list[WrappedDek], msg: RewrapMessage, managed: Any, *, vault: KeyVault, dekstore: DekStore):
    """Each DEK's move, in order: unwrapped, checked and wrapped concurrently (every DEK is independent), then written
    in one transaction with the shard's counter (one counter update per grant, not a race of ten on one row). A crash
    anywhere leaves each DEK wrapped under a version that still works: the write is the last step, all or nothing."""
    if len(deks) == 1:
        prepared = [prepare(deks[0], msg, managed, vault=vault)]
    else:
        with ThreadPoolExecutor(max_workers=len(deks), thread_name_prefix="rewrap") as pool:
            prepared = list(pool.map(lambda d: prepare(d, msg, managed, vault=vault), deks))
    results: list[str] = [p if isinstance(p, str) else "" for p in prepared]
    writes = [(i, dek, p) for i, (dek, p) in enumerate(zip(deks, prepared, strict=True)) if not isinstance(p, str)]
    if not writes:
        return results
    try:
        written: list = dekstore.replace_many([(dek, moved) for _, dek, moved in writes])
    except CmkError:
        written = [ServiceUnavailable("the page's write failed")] * len(writes)
    for (i, dek, _), outcome in zip(writes, written, strict=True):
        if isinstance(outcome, WrappedDek):
            results[i] = "moved"
        elif isinstance(outcome, NotFound):
            results[i] = "skipped"  # deleted since it was listed: nothing to move
        elif isinstance(outcome, PreconditionFailed):
            results[i] = _after_conflict(dek, msg, managed, vault=vault, dekstore=dekstore)
        else:
            results[i] = "failed"
    return results


def prepare(dek: WrappedDek, msg: RewrapMessage, managed: Any, *, vault: KeyVault) -> WrappedDek | str:
    """The DEK's record wrapped under the target, or 'failed' (transient: retried by a later message) or
    'refused:{code}' (KCV mismatch or a refusal no retry fixes: quarantined, never retried by itself)."""
    try:
        with unwrap_checked(dek, vault=vault) as opened:  # the plaintext lives only inside this block
            return rewrapped(opened, vault=vault, key=managed.ref, version=msg.target_version)
    except TRANSIENT:
        return "failed"
    except CmkError as exc:
        return f"refused:{exc.code}"  # KCV mismatch, or the version refuses (disabled, deleted, corrupt value)


def _after_conflict(dek: WrappedDek, msg: RewrapMessage, managed: Any, *, vault: KeyVault, dekstore: DekStore) -> str:
    """A 412: another worker wrote the DEK first. Re-read it; 'skipped' if it is on the target (or was deleted, or
    is on a newer version, or the target is superseded: its own re-wrap moves it); else move it once more, alone."""
    try:
        dek = dekstore.get(dek.partition, dek.dek_id)
    except NotFound:
        return "skipped"
    except TRANSIENT:
        return "failed"
    if same_key_id(dek.key_id, msg.target):
        return "skipped"
    try:
        if not _still_behind_current_target(dek, msg, managed, vault=vault):
            return "skipped"
    except TRANSIENT:
        return "failed"
    except CmkError as exc:
        return f"refused:{exc.code}"
    moved = prepare(dek, msg, managed, vault=vault)
    if isinstance(moved, str):
        return moved
    try:
        dekstore.replace(moved)
        return "moved"
    except NotFound:
        return "skipped"
    except (PreconditionFailed, *TRANSIENT):
        return "failed"  # raced again: a later message looks at it afresh


def _still_behind_current_target(dek: WrappedDek, msg: RewrapMessage, managed: Any, *, vault: KeyVault) -> bool:
    """After a 412 the DEK was re-read off the target: move it only while the target is still the key's current
    version and the DEK is on an older version of this key (L2). Another worker may have moved it to a newer version
    meanwhile; writing it back under the page's target would undo that re-wrap after its completion alert."""
    current = vault.get_key(managed.ref)
    if current.version.lower() != msg.target_version.lower():
        return False
    if not same_key_id(dek.key_id, managed.ref.version_id(dek.key_version)):
        return False  # not a version of this key at all: nothing this page may decide about
    on = vault.get_key(managed.ref, dek.key_version)
    return on.created is None or current.created is None or on.created < current.created
