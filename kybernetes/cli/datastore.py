"""`kyb datastore ...`: datastore maintenance.

`kyb datastore migrate --from URL --to URL [--force] [--prefix P]` copies every live
key and value from one datastore to another — SQLite to etcd, etcd to SQLite, or
between two of the same kind — then verifies that the target holds exactly the
source's keys with byte-equal values.  Objects keep everything stored inside
them (uid, creationTimestamp, ...); their resourceVersions become the target's
revisions, as with any restore.

The source is read at one revision (a consistent snapshot, page by page), so it
may stay online, but writes made to it after that revision are not copied: stop
the API servers before migrating.  A target that already holds keys under the
prefix is refused unless --force, which replaces what it holds there.

URLs are those of `kyb server --datastore-endpoint`: `sqlite:///path/state.db` (or a
bare path), `etcd://h1:2379,h2:2379`, `etcds://h:2379?ca=CA.crt&cert=C.crt&key=C.key`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from typing import AsyncIterator, Optional, TextIO

PAGE = 1000
CONCURRENCY = 64


def add_arguments(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add `datastore` (with its `migrate` subcommand) to the `kyb` subcommands."""
    p = subparsers.add_parser("datastore", help="datastore maintenance (migrate between SQLite and etcd)",
                              description=__doc__.split("\n\n", 1)[0])
    _add_subcommands(p)
    return p


def _add_subcommands(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="datastore_command", required=True)
    m = sub.add_parser(
        "migrate",
        help="copy every key from one datastore to another and verify it",
        description="Copy every live key/value from --from to --to (SQLite <-> etcd), then verify counts "
        "and byte-equal values.  Stop the API servers first.",
    )
    m.add_argument("--from", dest="source", required=True, metavar="URL",
                   help="source datastore: sqlite://PATH, etcd://HOST:PORT[,...], etcds://...?ca=&cert=&key=")
    m.add_argument("--to", dest="target", required=True, metavar="URL", help="target datastore (same forms)")
    m.add_argument("--force", action="store_true",
                   help="migrate into a target that already holds keys (they are deleted first)")
    m.add_argument("--prefix", default="", help="copy only keys under this prefix (default: every key)")
    m.add_argument("--quiet", "-q", action="store_true", help="print only errors")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "datastore_command", None) != "migrate":
        print("kyb datastore: expected a subcommand (migrate)", file=sys.stderr)
        return 2
    out = open("/dev/null", "w") if args.quiet else sys.stdout  # noqa: SIM115
    try:
        return asyncio.run(migrate(args.source, args.target, force=args.force, prefix=args.prefix, out=out))
    except KeyboardInterrupt:
        return 130
    finally:
        if out is not sys.stdout:
            out.close()


class MigrationError(Exception):
    """The migration cannot start or did not verify."""


async def _pages(store, prefix: str, revision: int = 0) -> AsyncIterator[list]:
    """Every live key under `prefix`, page by page, all read at one revision."""
    res = await store.list(prefix, revision=revision, limit=PAGE)
    rev = res.revision
    while True:
        if res.items:
            yield res.items
        if not res.more or not res.items:
            return
        res = await store.list(prefix, revision=rev, limit=PAGE, start_after=res.items[-1].key)


async def _digest_map(store, prefix: str, revision: int = 0) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    async for page in _pages(store, prefix, revision):
        for kv in page:
            out[kv.key] = hashlib.sha256(kv.value).digest()
    return out


async def _gather_bounded(coros: list) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(c):
        async with sem:
            return await c

    await asyncio.gather(*(one(c) for c in coros))


async def migrate(source: str, target: str, *, force: bool = False, prefix: str = "",
                  out: Optional[TextIO] = None) -> int:
    """Copy and verify; returns the process exit code (0 ok, 1 failed)."""
    from kybernetes.storage import StorageError, open_store

    out = out or sys.stdout
    err = sys.stderr
    if source == target:
        print("kyb datastore migrate: --from and --to are the same datastore", file=err)
        return 1
    try:
        src = open_store(source, compact_interval=0)
        dst = open_store(target, compact_interval=0)
    except (ValueError, OSError) as e:
        print(f"kyb datastore migrate: {e}", file=err)
        return 1
    started = []
    try:
        for s, url in ((src, source), (dst, target)):
            try:
                await s.start()
            except (StorageError, OSError) as e:
                print(f"kyb datastore migrate: cannot open {url}: {e}", file=err)
                return 1
            started.append(s)
        return await _migrate(src, dst, source, target, force, prefix, out, err)
    except (StorageError, MigrationError) as e:
        print(f"kyb datastore migrate: {e}", file=err)
        return 1
    finally:
        for s in started:
            await s.close()


async def _migrate(src, dst, source: str, target: str, force: bool, prefix: str, out: TextIO, err: TextIO) -> int:
    t0 = time.monotonic()
    existing = await dst.list(prefix, limit=1)
    if existing.items:
        n = existing.count or "some"
        if not force:
            print(f"kyb datastore migrate: the target {target} already holds {n} keys"
                  f"{' under ' + repr(prefix) if prefix else ''}; use --force to replace them", file=err)
            return 1
        deleted = 0
        async for page in _pages(dst, prefix):
            await _gather_bounded([dst.delete(kv.key) for kv in page])
            deleted += len(page)
        print(f"removed {deleted} keys from the target (--force)", file=out)

    # One consistent snapshot of the source: the first page fixes the revision.
    first = await src.list(prefix, limit=1)
    rev = first.revision
    copied = 0
    nbytes = 0
    async for page in _pages(src, prefix, rev):
        await _gather_bounded([dst.create(kv.key, kv.value) for kv in page])
        copied += len(page)
        nbytes += sum(len(kv.value) for kv in page)
    t_copy = time.monotonic() - t0
    print(f"copied {copied} keys ({nbytes} bytes) from {source} at revision {rev} to {target} in {t_copy:.1f}s",
          file=out)

    problems = await verify(src, dst, prefix, rev)
    if problems:
        for p in problems[:20]:
            print(f"kyb datastore migrate: verify: {p}", file=err)
        if len(problems) > 20:
            print(f"kyb datastore migrate: verify: ... and {len(problems) - 20} more", file=err)
        return 1
    print(f"verified: {copied} keys, values byte-equal ({time.monotonic() - t0:.1f}s in all)", file=out)
    return 0


async def verify(src, dst, prefix: str = "", src_revision: int = 0) -> list[str]:
    """Differences between the source (at `src_revision`) and the target now: [] when equal."""
    a = await _digest_map(src, prefix, src_revision)
    b = await _digest_map(dst, prefix)
    problems: list[str] = []
    if len(a) != len(b):
        problems.append(f"source has {len(a)} keys, target has {len(b)}")
    for k in sorted(a.keys() - b.keys()):
        problems.append(f"missing in target: {k}")
    for k in sorted(b.keys() - a.keys()):
        problems.append(f"only in target: {k}")
    for k in sorted(a.keys() & b.keys()):
        if a[k] != b[k]:
            problems.append(f"value differs: {k}")
    return problems


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m kybernetes.cli.datastore migrate ...` (the same as `kyb datastore migrate ...`)."""
    parser = argparse.ArgumentParser(prog="kyb datastore")
    _add_subcommands(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
