"""``tacore keys generate|list|revoke``: the broker's allow-list, managed from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from clients.curve import CurveKeys
from tacore.auth.keyring import GeneratedKey, KeyKind, Keyring, KeyringError
from tacore.auth.roles import Role
from tacore.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="CurveZMQ keys of the broker: generate, list, revoke (docs/security.md)")
    keys.add_argument("--keys-dir", type=Path, help="the keys directory (default KEYS_DIR, else DATA_DIR/keys)")
    actions = keys.add_subparsers(dest="action", required=True)

    generate = actions.add_parser("generate", help="make a key pair and allow it (also makes the broker's pair)")
    generate.add_argument("name", help="1-64 letters, digits, '_', '.', '-'")
    kind = generate.add_mutually_exclusive_group()
    kind.add_argument("--role", choices=[r.value for r in Role], help="a client key's role (default read)")
    kind.add_argument("--worker", action="store_true", help="a worker key (registers workers; calls nothing)")
    generate.add_argument("--out", type=Path,
                          help="where to write the secret key file (default KEYS_DIR/NAME.key_secret)")

    ensure = actions.add_parser("ensure", help="as generate, but keep the key when it exists with a usable secret "
                                "file (for init scripts and containers: run it at every start)")
    ensure.add_argument("name")
    ensure_kind = ensure.add_mutually_exclusive_group()
    ensure_kind.add_argument("--role", choices=[r.value for r in Role], help="a client key's role (default read)")
    ensure_kind.add_argument("--worker", action="store_true", help="a worker key")
    ensure.add_argument("--out", type=Path, help="where its secret file is (default KEYS_DIR/NAME.key_secret)")

    listing = actions.add_parser("list", help="every key, revoked ones too, and the broker's public key")
    listing.add_argument("--json", action="store_true")

    revoke = actions.add_parser("revoke", help="take a key off the allow-list and delete its secret file")
    revoke.add_argument("name")
    keys.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    keyring = Keyring(args.keys_dir or settings.keys_path)
    try:
        if args.action == "generate":
            if args.worker:
                made = keyring.generate(args.name, KeyKind.WORKER, None, args.out)
            else:
                made = keyring.generate(args.name, KeyKind.CLIENT, Role(args.role or Role.READ), args.out)
            _print_generated(made, keyring)
        elif args.action == "ensure":
            _ensure(keyring, args)
        elif args.action == "list":
            _print_list(keyring, args.json)
        else:
            entry = keyring.revoke(args.name)
            print(f"revoked {entry.kind} key {entry.name!r} ({entry.public_key}); the broker refuses it for new "
                  "connections at once and, on live ones, from its next heartbeat")
    except KeyringError as exc:
        print(f"tacore keys: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_generated(made: GeneratedKey, keyring: Keyring) -> None:
    entry = made.entry
    setting = "WORKER_KEY" if entry.kind is KeyKind.WORKER else "CLIENT_KEY"
    role = f", role {entry.role}" if entry.role is not None else ""
    print(f"made {entry.kind} key {entry.name!r}{role}\n"
          f"  public key:  {entry.public_key}\n"
          f"  secret file: {made.secret_file} (0600; it also names the broker's key)\n"
          f"  broker key:  {made.server_key} ({keyring.server_public_file})\n"
          f"Copy the secret file to the machine that uses it and set {setting}=<its path> there.")


def _ensure(keyring: Keyring, args: argparse.Namespace) -> None:
    from tacore.auth.credentials import ensure_key

    kind, role = (KeyKind.WORKER, None) if args.worker else (KeyKind.CLIENT, Role(args.role or Role.READ))
    had = keyring.active(args.name)
    path = ensure_key(keyring, args.name, kind, role, args.out)
    public = CurveKeys.load(path).public_key.decode()
    state = "kept" if had is not None and had.public_key == public else "made"
    print(f"{state} {kind} key {args.name!r} ({public}); secret file {path}")


def _print_list(keyring: Keyring, as_json: bool) -> None:
    entries = keyring.entries()
    server = keyring.server_keys()[0].decode() if keyring.server_secret_file.is_file() else None
    if as_json:
        print(json.dumps({"keys_dir": str(keyring.directory), "server_key": server,
                          "keys": [e.to_json() | {"active": e.active} for e in entries]}, indent=2))
        return
    print(f"keys directory: {keyring.directory}\nbroker key:     {server or '(none yet)'}")
    if not entries:
        print("no client or worker keys")
        return
    print(f"\n{'name':24}{'kind':8}{'role':7}{'status':22}public key")
    for e in entries:
        status = "active" if e.active else f"revoked {_date(e.revoked_at)}"
        print(f"{e.name:24}{e.kind:8}{e.role or '-':7}{status:22}{e.public_key}")


def _date(epoch: float | None) -> str:
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
