"""`kyb secrets-encrypt rewrite`: re-encrypt stored values with the current write key.

The last step of a key rotation (upstream: "rewrite all secrets"): after the new key has
been moved first in the EncryptionConfiguration, every value under the given resources is
read, decrypted with whichever configured key wrote it and written back with the first
provider/key.  Works on the datastore directly, so stop `kyb server` first (the data dir
lock is taken while it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def add_arguments(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = subparsers.add_parser("secrets-encrypt", help="encryption at rest maintenance (rewrite with the current key)",
                              description=__doc__.split("\n\n", 1)[0])
    sub = p.add_subparsers(dest="secrets_encrypt_command", required=True)
    r = sub.add_parser("rewrite", help="re-encrypt stored values with the first provider/key of the config")
    r.add_argument("--data-dir", type=Path, default=None, help="state directory of the (stopped) server")
    r.add_argument("--datastore-endpoint", default="", help="sqlite://PATH or etcd://... (default DIR/db/state.db)")
    r.add_argument("--encryption-provider-config", required=True)
    r.add_argument("--resources", default="secrets",
                   help="comma-separated resources to rewrite, as in the config (secrets, deployments.apps); "
                        "default secrets")
    r.add_argument("--all", action="store_true", help="rewrite even values already written with the current key")
    return p


def _prefix(resource: str) -> str:
    from kybernetes.storage.encryption import parse_group_resource

    group, res = parse_group_resource(resource)
    return f"/registry/{group}/{res}/" if group else f"/registry/{res}/"


async def _rewrite(args: argparse.Namespace) -> int:
    from kybernetes.cli.server import DataDirLock, default_data_dir
    from kybernetes.storage import open_store
    from kybernetes.storage.encryption import EncryptionConfigError, EncryptionTransformers, load_encryption_config
    from kybernetes.storage.encryption import rewrite_all

    try:
        transformers = EncryptionTransformers(load_encryption_config(args.encryption_provider_config))
    except EncryptionConfigError as e:
        print(f"kyb secrets-encrypt: {e}", file=sys.stderr)
        return 1
    data_dir = (args.data_dir or default_data_dir()).resolve()
    url = args.datastore_endpoint or f"sqlite://{data_dir / 'db' / 'state.db'}"
    lock = None
    if not args.datastore_endpoint:
        lock = DataDirLock(data_dir)
        lock.acquire()
    store = open_store(url)
    await store.start()
    try:
        prefixes = [_prefix(r.strip()) for r in args.resources.split(",") if r.strip()]
        counts = await rewrite_all(store, prefixes, transformers, only_stale=not args.all)
    finally:
        await store.close()
        if lock is not None:
            lock.release()
    print(f"rewritten: {counts['rewritten']}, already current: {counts['current']}, "
          f"failed to decrypt: {counts['failed']}, changed concurrently: {counts['conflicts']}")
    return 1 if counts["failed"] else 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "secrets_encrypt_command", None) != "rewrite":
        print("kyb secrets-encrypt: expected a subcommand (rewrite)", file=sys.stderr)
        return 2
    return asyncio.run(_rewrite(args))
