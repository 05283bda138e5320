"""`python -m shared.envelope.cli`: envelope encryption from a shell, with the app's settings and adapters.

    seed     --key NAME --count N [--workers 8]   create N DEKs under the key's current version; JSON summary
    open     --partition P --dek-id ID            unwrap and KCV-check one DEK; prints its record, never its bytes
    encrypt  --partition P --dek-id ID [--aad S]  stdin -> base64 envelope ciphertext on stdout
    decrypt  --partition P --dek-id ID [--aad S]  base64 ciphertext on stdin -> plaintext on stdout
    rotate-shard-key --key NAME [--shard S]       a new shard key for S (default: every shard), DEKs moved locally
    migrate  --key NAME --to shard-keys|flat [--shard S]   move DEKs between flat and shard keys, one shard at a time

A key whose dek-table sets `hierarchy: shard-keys` seeds its DEKs under shard keys; open/encrypt/decrypt open either
kind. rotate-shard-key and migrate print one JSON line per shard; re-run either after a crash to finish it.

The inventory, the vault and the DEK registry come from the same Container the Functions app uses (so the same
settings reach the same vault and table); `run` takes them as arguments, which is how tests drive it over fakes.
Seeding shows a progress bar on stderr and writes its JSON summary to stdout, so `> summary.json` keeps only data.
Exit codes: 0 done, 1 a service refused (the error's code and message on stderr), 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from shared.envelope import deks as envelope
from shared.envelope.hierarchy import create_sharded_dek, dek_table_of, is_hierarchical, open_any, shard_prefix
from shared.envelope.shard_keys import HIERARCHIES, ShardKeyCache
from shared.envelope.shard_rotation import migrate_shard, rotate_shard_key
from shared.envelope.sharding import all_shards, shard_count
from shared.errors import CmkError, InvalidInput
from shared.inventory.model import ManagedKey
from shared.model import ConsumerKind

BAR_WIDTH = 30
MAX_COUNT = 1_000_000


@dataclass(frozen=True)
class Ports:
    inventory: Any
    vault: Any
    dekstore: Any
    dek_table: str  # the table the DEK store writes, to check against the key's dek-table consumer
    shardkeys: Any = None
    cache: Any = None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from shared.bootstrap import Container
        from shared.settings import Settings

        container = Container(Settings.from_env())
        ports = Ports(
            container.inventory, container.vault, container.dekstore, container.settings.dek_table,
            container.shardkeys, ShardKeyCache(container.settings.shard_key_ttl_seconds),
        )  # fmt: skip
        return run(args, ports, stdin=sys.stdin.buffer, stdout=sys.stdout, stderr=sys.stderr)
    except InvalidInput as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return 2
    except CmkError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace, ports: Ports, *, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """One subcommand over `ports`; errors propagate as the project's errors (main turns them into exit codes)."""
    if args.command == "seed":
        summary = seed(ports, args.key, args.count, workers=args.workers, stderr=stderr)
        print(json.dumps(summary, sort_keys=True), file=stdout)
        return 0 if summary["failed"] == 0 else 1
    if args.command in ("rotate-shard-key", "migrate"):
        return _per_shard(args, ports, stdout)
    opened = open_any(args.partition, args.dek_id, vault=ports.vault, store=ports.dekstore, shardkeys=ports.shardkeys,
                      cache=ports.cache)  # fmt: skip
    with opened as dek:
        if args.command == "open":
            r = dek.record
            shown = {"partition": r.partition, "dek_id": r.dek_id, "key_id": r.key_id, "kcv": "ok"}
            print(json.dumps(shown, sort_keys=True), file=stdout)
        elif args.command == "encrypt":
            blob = envelope.encrypt(dek, stdin.read(), args.aad.encode())
            print(base64.b64encode(blob).decode(), file=stdout)
        else:
            try:
                blob = base64.b64decode(stdin.read().strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidInput("stdin", "must be the base64 ciphertext `encrypt` printed") from exc
            plaintext = envelope.decrypt(dek, blob, args.aad.encode())
            binary = getattr(stdout, "buffer", None)  # the real stdout: bytes as they were, not re-encoded
            if binary is not None:
                stdout.flush()
                binary.write(plaintext)
                binary.flush()
            else:
                stdout.write(plaintext.decode("utf-8", errors="replace"))
    return 0


def seed(ports: Ports, key_name: str, count: int, *, workers: int = 8, stderr: IO[str]) -> dict:
    """`count` new DEKs under `key_name`'s current version, in its dek-table consumer's shards."""
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput("count", f"must be from 1 to {MAX_COUNT}")
    if not 1 <= workers <= 64:
        raise InvalidInput("workers", "must be from 1 to 64")
    key = ports.inventory.key(key_name)
    _check_table(key, ports.dek_table)
    current = ports.vault.get_key(key.ref)
    started = time.monotonic()
    partitions: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    bar = _Progress(count, stderr)

    sharded = is_hierarchical(key)

    def one(_: int) -> str | None:
        try:
            if sharded:
                made = create_sharded_dek(key, vault=ports.vault, store=ports.dekstore, shardkeys=ports.shardkeys,
                                          cache=ports.cache, current=current)  # fmt: skip
            else:
                made = envelope.create_dek(key, vault=ports.vault, store=ports.dekstore, current=current)
            with made as dek:
                return dek.partition
        except CmkError as exc:
            return f"!{exc.code}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(one, range(count)):
            if outcome and outcome.startswith("!"):
                errors[outcome[1:]] += 1
            else:
                partitions[outcome or ""] += 1
            bar.step()
    bar.done()
    return {
        "key": key.name,
        "key_id": key.ref.version_id(current.version),
        "requested": count,
        "created": sum(partitions.values()),
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "partitions": dict(sorted(partitions.items())),
        "seconds": round(time.monotonic() - started, 3),
    }


def _per_shard(args: argparse.Namespace, ports: Ports, stdout: IO[str]) -> int:
    """One shard at a time, each printed as it finishes: a crash loses nothing, a re-run finishes what is left."""
    key = ports.inventory.key(args.key)
    _check_table(key, ports.dek_table)
    options = dek_table_of(key)
    shards = [args.shard] if args.shard else all_shards(shard_prefix(key), shard_count(options))
    if args.shard and args.shard not in all_shards(shard_prefix(key), shard_count(options)):
        raise InvalidInput("shard", f"{args.shard!r} is not a shard of {key.name}")
    refused = 0
    for shard in shards:
        common = {"vault": ports.vault, "store": ports.dekstore, "shardkeys": ports.shardkeys, "cache": ports.cache}
        if args.command == "migrate":
            change = migrate_shard(key, shard, to=args.to, **common)
        elif not ports.shardkeys.list_shard(shard):
            continue  # a shard with no DEK yet has no shard key to rotate
        else:
            change = rotate_shard_key(key, shard, **common)
        refused += len(change.refused)
        print(json.dumps(change.to_json(), sort_keys=True), file=stdout)
    return 0 if not refused else 1


def _check_table(key: ManagedKey, table: str) -> None:
    tables = [c.options.get("table") for c in key.consumers if c.kind is ConsumerKind.DEK_TABLE]
    if not tables:
        raise InvalidInput("key", f"{key.name} has no dek-table consumer in the inventory: its DEKs would be orphans")
    if table not in tables:
        raise InvalidInput(
            "CMK_DEK_TABLE", f"is {table!r} but {key.name}'s dek-table consumer names {tables[0]!r}: set them alike"
        )


class _Progress:
    """A one-line bar on stderr, redrawn at most every 1% so a large seed costs nothing for it."""

    def __init__(self, total: int, out: IO[str]) -> None:
        self.total, self.out, self.n, self._shown = total, out, 0, -1

    def step(self) -> None:
        self.n += 1
        pct = self.n * 100 // self.total
        if pct != self._shown:
            self._shown = pct
            filled = self.n * BAR_WIDTH // self.total
            self.out.write(f"\rseed [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.n}/{self.total} {pct:3d}%")
            self.out.flush()

    def done(self) -> None:
        self.out.write("\n")
        self.out.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.envelope.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed_cmd = sub.add_parser("seed", help="create N DEKs under a managed key")
    seed_cmd.add_argument("--key", required=True, help="inventory key name (vault/name when names repeat)")
    seed_cmd.add_argument("--count", type=int, required=True)
    seed_cmd.add_argument("--workers", type=int, default=8)
    for name, text in (("open", "unwrap and check one DEK"), ("encrypt", "stdin -> base64"), ("decrypt", "back")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--partition", required=True)
        cmd.add_argument("--dek-id", required=True)
        if name != "open":
            cmd.add_argument("--aad", default="", help="authenticated context, e.g. a row id")
    rotate = sub.add_parser("rotate-shard-key", help="new shard keys; DEKs re-sealed locally")
    rotate.add_argument("--key", required=True)
    rotate.add_argument("--shard", default=None, help="one shard (default: every shard of the key)")
    migrate = sub.add_parser("migrate", help="move DEKs between flat and shard keys, one shard at a time")
    migrate.add_argument("--key", required=True)
    migrate.add_argument("--to", required=True, choices=HIERARCHIES)
    migrate.add_argument("--shard", default=None, help="one shard (default: every shard of the key)")
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return _parser().parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
