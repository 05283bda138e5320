"""`python -m localrun` (what `scripts/run` calls): the app on the embedded default, plus helper commands.

python -m localrun [up] [--keep] [--hsm] [--state-dir DIR]   start everything, seed it, print the guide, stream the log
                                                       (--hsm: the reference deployment on an emulated Managed HSM)
python -m localrun up --inventory-file inventory/x.yaml   the same with another inventory (e.g. an imported key)
python -m localrun grant --principal aks --key mysql-encryption-key [--role "Key Vault Crypto User"]
python -m localrun revoke --principal aks --key mysql-encryption-key
python -m localrun clock --advance P91D
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from localrun.system import ROOT, LocalSystem, Ports, load_running

DEFAULT_STATE_DIR = ROOT / ".local" / "run"


def _rel(path: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def guide(system: LocalSystem) -> str:
    cloud, dev = system.cloud, system.devhost
    fkey, mkey = dev["function_key"], dev["master_key"]
    base = dev["url"]
    ca = _rel(cloud.ca_cert)
    keys_curl = f'curl -s -H "x-functions-key: {fkey}" {base}/api/keys'
    status_page = f"{base}/api/status?code={fkey}"
    state = "" if system.state_dir.resolve() == DEFAULT_STATE_DIR.resolve() else f" --state-dir {system.state_dir}"
    localrun = f".venv/bin/python -m localrun{state}"
    storage = dict(part.split("=", 1) for part in system.storage_connection.strip(";").split(";"))
    azurite = ", ".join(
        f"{name[:-8].lower()} {storage[name].rsplit(':', 1)[1].split('/')[0]}"
        for name in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint")
    )
    json_post = '-X POST -H "Content-Type: application/json" -d'
    clock_curl = f'curl -s --cacert {ca} {json_post} \'{{"advance_iso": "P91D"}}\' {cloud.admin_url}/clock'
    run_sweep = f"{base}/admin/functions/compliance_sweep"
    sweep_curl = f'curl -s -i -H "x-functions-key: {mkey}" {json_post} \'{{"input": ""}}\' {run_sweep}'
    clock_window = f'curl -s --cacert {ca} {json_post} \'{{"advance_iso": "P151D"}}\' {cloud.admin_url}/clock'
    audit_curl = f'curl -s -H "x-functions-key: {fkey}" "{base}/api/audit?key=aks-encryption-key"'
    rotation = '{"key": "mysql-encryption-key", "reason": "guide: operator rotation"}'
    rotate_curl = f"curl -s -i -H \"x-functions-key: {fkey}\" {json_post} '{rotation}' {base}/api/rotations"
    revocation = '"key": "mysql-encryption-key", "service": "mysql", "action": "revoke-access", "reason": "drill"'
    revocations = f"{base}/api/revocations"
    plan_curl = f"curl -s -H \"x-functions-key: {fkey}\" {json_post} '{{{revocation}}}' {revocations}"
    execute = f'{{{revocation}, "dry_run": false}}'
    revoke_curl = f"curl -s -i -H \"x-functions-key: {fkey}\" {json_post} '{execute}' {revocations}"
    watch_curl = f'curl -s -H "x-functions-key: {fkey}" {revocations}/$REVOCATION_ID'
    restoration = '"{\\"revocation_id\\": \\"$REVOCATION_ID\\", \\"reason\\": \\"guide: break-glass\\"}"'
    restore_curl = f'curl -s -i -H "x-functions-key: {fkey}" {json_post} {restoration} {base}/api/restorations'
    settle_curl = f"curl -s --cacert {ca} -X POST {cloud.admin_url}/rbac/propagation/settle"
    t = system.timings
    rotates_once = "watch keyvault_events rotate it once"
    if cloud.hsm:
        rotates_once = "run the sweep (step 4): it rotates it once"
        store = f"Managed HSM       {cloud.vault_url}   ({cloud.vault_name}, emulated; local RBAC, no events)"
        rotates = (
            "The HSM's rotation policy creates new versions. A Managed HSM sends\n"
            "    no events: the compliance sweep (step 4 runs it now) finds them, re-wraps DEKs and moves consumers."
        )
        reconciles = (
            "Nothing announces a local RBAC change: the sweep (step 4)\n"
            "    reconciles the key (enforce mode): the grant is removed, the Access.Violation and Access.Remediated\n"
            "    alerts go to the topic (deliver_alerts in the log below), and /api/keys is compliant again."
        )
    else:
        store = f"Key Vault         {cloud.vault_url}   ({cloud.vault_name}, emulated; RBAC from the ARM emulator)"
        rotates = (
            "Key Vault's rotation policy creates new versions and Event Grid delivers\n"
            "    KeyNewVersionCreated to the keyvault_events function: watch for it in the log below."
        )
        reconciles = (
            "ARM raises ResourceWriteSuccess, role_assignment_events\n"
            '    reconciles the key (enforce mode): the grant is removed ("remediated" in the log below), the Access.'
            "Violation and\n    Access.Remediated alerts go to the topic, and /api/keys is compliant again."
        )
    return f"""
cmk-guardian is running on the embedded default: local emulators, nothing leaves this machine.
  Status page       {status_page}   (open it first, in a browser)
  Functions host    {base}   (function key {fkey})
  {store}
  ARM + admin API   {cloud.arm_url}   (admin: {cloud.admin_url})
  Event Grid topic  {cloud.ready["eventgrid_topic_url"]}
  Azurite           127.0.0.1: {azurite}
  CA certificate    {ca}
  Logs              {_rel(system.state_dir / "logs")}/
Serving {t.get("serving", 0):.1f} s after start (emulators ready at {t.get("emulators_ready", 0):.1f} s).

Try it, from this folder in another terminal:
 0. Open the status page (first line above) in a browser: every key, its versions, dependents, revocations, the
    latest audit records and alerts, at a glance. Reload it after each step below to see what changed.
 1. Every managed key: current version, attributes, rotation policy, compliance findings.
    $ {keys_curl}
 2. Let 91 days pass in the emulated cloud. {rotates}
    $ {clock_curl}
 3. Drift: give the AKS identity access to the MySQL key. {reconciles}
    $ {localrun} grant --principal aks --key mysql-encryption-key
    $ {keys_curl}
 4. Run the compliance sweep now instead of waiting for its schedule (any function runs this way).
    $ {sweep_curl}
 5. Rotation by the app: take the vault's own Rotate action off the AKS key, move the clock into its near-expiry
    window, and {rotates_once} ("status": "rotated" in the log below); then see the new
    version in /api/keys and the record in the audit trail. An operator can rotate too (201; the same request again
    answers 200 "already-rotated").
    $ {localrun} policy --key aks-encryption-key --notify-only
    $ {clock_window}
    $ {keys_curl}
    $ {audit_curl}
    $ {rotate_curl}
 6. Revoke, watch, restore: take the MySQL identity's use of its key away. The first request only plans (who loses
    what); "dry_run": false carries it out (202, Location: /api/revocations/<id>). As in Azure, Key Vault applies a
    role assignment change only after RBAC propagation (here up to 10 emulated minutes): let that time pass (the
    settle call moves the emulated clock by the longest pending delay). The emulated MySQL server then goes
    Inaccessible, and the revocation's follow-up check (every 3 s, once 10 minutes have passed on the emulated
    clock) marks it "verified". Set REVOCATION_ID to the "id" it answered, watch it until verified, then give the
    grant back (break-glass) and let that propagate too: the server is Ready again.
    $ {plan_curl}
    $ {revoke_curl}
    $ {settle_curl}
    $ {watch_curl}
    $ {restore_curl}
    $ {settle_curl}

Ctrl-C stops everything this run started. The function log follows.
"""


def say(text: str, *, stream: TextIO | None = None) -> None:
    """Print, never raising. Under `scripts/run | tee log`, Ctrl-C ends tee too, and the next write meets a broken
    pipe; an exception there used to abort the shutdown and leave the emulators and devhost running. As Python's
    documentation advises for SIGPIPE, the dead stream is pointed at devnull so later writes (and the flush at exit)
    go nowhere instead of failing again."""
    out = stream or sys.stdout
    try:
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)


def cmd_up(args: argparse.Namespace) -> int:
    ports = Ports.free() if args.free_ports else Ports()
    inventory = Path(args.inventory_file).resolve() if args.inventory_file else None
    system = LocalSystem(
        Path(args.state_dir), ports=ports, echo=sys.stdout, keep_state=args.keep, storage=args.storage,
        inventory=inventory, hsm=args.hsm,
    )  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    say("localrun: starting Azurite, the emulators and the devhost ...")
    try:
        system.up()
    except (RuntimeError, TimeoutError) as exc:
        say(f"localrun: could not start: {exc}", stream=sys.stderr)
        return 1
    dead: list[str] = []
    try:
        say(guide(system))
        while not stop.wait(0.5):
            dead = [c.name for c in system.group.children if c.proc.poll() is not None]
            if dead:
                break
    finally:
        system.down()  # the children first: nothing printed before this may stand in its way
    if dead:
        say(f"localrun: {', '.join(dead)} stopped unexpectedly; see {_rel(system.state_dir / 'logs')}/")
        return 1
    say("localrun: stopped everything this run started")
    return 0


def _principal(cloud, name: str) -> str:
    ids = cloud.identities
    return {"aks": ids.aks, "mysql": ids.mysql, "app": ids.app, "operator": ids.operator}.get(name, name)


def cmd_grant(args: argparse.Namespace) -> int:
    from shared import roles

    cloud = load_running(Path(args.state_dir))
    wanted = args.role or ("Managed HSM Crypto User" if cloud.hsm else "Key Vault Crypto User")
    role = roles.ROLES_BY_NAME.get(wanted.lower()) or roles.role_by_id(wanted)
    if role is None:
        print(f"--role: unknown built-in role {wanted!r}", file=sys.stderr)
        return 2
    key = cloud.inventory().key(args.key)
    assignment = cloud.assign(key.scope, role, _principal(cloud, args.principal))
    print(json.dumps({"granted": role.name, "principal": args.principal, "key": key.name, "assignment": assignment}))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    cloud = load_running(Path(args.state_dir))
    key = cloud.inventory().key(args.key)
    principal = _principal(cloud, args.principal).lower()
    access = cloud.access()
    removed = [
        a.id
        for a in access.list_assignments(key.scope)
        if a.principal_id.lower() == principal
        and a.scope.lower() == key.scope.lower()
        and access.delete_assignment(a.id)
    ]
    print(json.dumps({"revoked": removed, "principal": args.principal, "key": key.name}))
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    """Set a key's rotation policy in the emulated vault: the inventory's, or Notify only (the vault then never
    rotates the key itself, so the app's own rotation can be watched)."""
    from shared.model import LifetimeAction, RotationActionType, RotationPolicy

    cloud = load_running(Path(args.state_dir))
    key = cloud.inventory().key(args.key)
    if args.notify_only:
        expires = key.rotation.expire_after.text if key.rotation.expire_after else None
        notify = (LifetimeAction(RotationActionType.NOTIFY, None, "P30D"),) if expires else ()
        policy = RotationPolicy(expires, notify)
    else:
        policy = key.rotation.to_policy()
    vault = cloud.keyvault(cloud.identities.app)
    try:
        saved = vault.set_rotation_policy(key.ref, policy)
    finally:
        vault.close()
    actions = [
        {"action": a.action.value, "after": a.time_after_create, "before": a.time_before_expiry} for a in saved.actions
    ]
    print(json.dumps({"key": key.name, "expires_in": saved.expires_in, "lifetime_actions": actions}))
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    cloud = load_running(Path(args.state_dir))
    print(json.dumps(cloud.admin("POST", "/clock", {"advance_iso": args.advance})))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the run keeps its state and logs")
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("up", help="start everything (the default)")
    for p in (parser, up):
        p.add_argument("--keep", action="store_true", help="keep keys, assignments and storage from the last run")
        p.add_argument("--free-ports", action="store_true", help="use any free ports instead of the documented ones")
        p.add_argument("--hsm", action="store_true", help="keep the keys in an emulated Managed HSM, not a Key Vault")
        p.add_argument(
            "--storage",
            choices=("connection-string", "identity"),
            default="connection-string",
            help="identity: no AzureWebJobsStorage connection string; the app's managed identity over HTTPS (OAuth)",
        )
        p.add_argument(
            "--inventory-file",
            help="seed and serve this inventory instead of the reference (a key with origin: imported gets its first "
            "version imported from the local stand-in for an on-premises HSM)",
        )
    grant = sub.add_parser("grant", help="add a role assignment on a managed key")
    grant.add_argument("--principal", required=True, help="aks, mysql, app, operator or a principal id")
    grant.add_argument("--key", required=True)
    grant.add_argument("--role", default=None, help="default: Key Vault (or Managed HSM) Crypto User")
    revoke = sub.add_parser("revoke", help="remove a principal's assignments on a managed key")
    revoke.add_argument("--principal", required=True)
    revoke.add_argument("--key", required=True)
    policy = sub.add_parser("policy", help="set a managed key's rotation policy in the emulated vault")
    policy.add_argument("--key", required=True)
    which = policy.add_mutually_exclusive_group(required=True)
    which.add_argument("--notify-only", action="store_true", help="no Rotate action: the app must rotate the key")
    which.add_argument("--inventory", action="store_true", help="the inventory's policy")
    clock = sub.add_parser("clock", help="move the emulated clock forward")
    clock.add_argument("--advance", required=True, help="ISO-8601 duration, e.g. P30D")
    args = parser.parse_args(argv)
    handlers = {
        None: cmd_up,
        "up": cmd_up,
        "grant": cmd_grant,
        "revoke": cmd_revoke,
        "policy": cmd_policy,
        "clock": cmd_clock,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
