"""`kyb token create|list|delete`: bootstrap tokens for joining nodes (as `kubeadm token`).

A token is a `kube-system/bootstrap-token-<id>` Secret; `kyb agent --server URL --token
<id>.<secret>` then obtains the node's client certificate through a CSR that the approving
controller approves for the default node-token group.  Talks to the server through the
admin kubeconfig of the data dir (or `--kubeconfig`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as _dt
import sys
from pathlib import Path

DEFAULT_GROUP = "system:bootstrappers:kyb:default-node-token"


def add_arguments(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = subparsers.add_parser("token", help="manage bootstrap tokens for joining nodes",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--data-dir", type=Path, default=None, help="use DIR/admin.kubeconfig (default: the server's)")
    p.add_argument("--kubeconfig", default="", help="kubeconfig to use instead")
    sub = p.add_subparsers(dest="token_command", required=True)
    c = sub.add_parser("create", help="create a bootstrap token and print it")
    c.add_argument("token", nargs="?", default="", help="the token ([a-z0-9]{6}.[a-z0-9]{16}); random if omitted")
    c.add_argument("--ttl", default="24h", help="lifetime (Go duration, 0 = never expires; default 24h)")
    c.add_argument("--description", default="")
    c.add_argument("--groups", default=DEFAULT_GROUP,
                   help=f"extra groups of the token's user (comma-separated; default {DEFAULT_GROUP})")
    sub.add_parser("list", help="list bootstrap tokens")
    d = sub.add_parser("delete", help="delete bootstrap tokens")
    d.add_argument("tokens", nargs="+", help="token ids or whole tokens")
    return p


def _client(args: argparse.Namespace):
    from kybernetes.cli.server import default_data_dir
    from kybernetes.client import Client

    kc = args.kubeconfig or (args.data_dir or default_data_dir()) / "admin.kubeconfig"
    return Client.from_kubeconfig(kc)


async def _create(args: argparse.Namespace) -> int:
    from kybernetes.auth.tokens import bootstrap_token_secret, generate_bootstrap_token, parse_bootstrap_token
    from kybernetes.client.leaderelection import parse_duration

    token = args.token or generate_bootstrap_token()
    if parse_bootstrap_token(token) is None:
        print("kyb token: the token must match [a-z0-9]{6}.[a-z0-9]{16}", file=sys.stderr)
        return 1
    try:
        ttl = parse_duration(args.ttl)
    except ValueError as e:
        print(f"kyb token: --ttl: {e}", file=sys.stderr)
        return 1
    expiration = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=ttl) if ttl > 0 else None
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    try:
        secret = bootstrap_token_secret(token, expiration=expiration, groups=groups, description=args.description)
    except ValueError as e:
        print(f"kyb token: {e}", file=sys.stderr)
        return 1
    async with _client(args) as c:
        await c.resource("", "v1", "secrets").create(secret, "kube-system")
    print(token)
    return 0


def _field(secret: dict, key: str) -> str:
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw else ""


async def _list(args: argparse.Namespace) -> int:
    from kybernetes.auth.tokens import BOOTSTRAP_TOKEN_SECRET_TYPE

    async with _client(args) as c:
        items = (await c.resource("", "v1", "secrets").list(
            "kube-system", field_selector=f"type={BOOTSTRAP_TOKEN_SECRET_TYPE}"))["items"]
    print(f"{'TOKEN':<24}{'EXPIRES':<22}{'USAGES':<28}{'DESCRIPTION':<24}EXTRA GROUPS")
    for s in items:
        tid, tsecret = _field(s, "token-id"), _field(s, "token-secret")
        usages = ",".join(k[len("usage-bootstrap-"):] for k in sorted(s.get("data") or {})
                          if k.startswith("usage-bootstrap-") and _field(s, k) == "true")
        print(f"{tid + '.' + tsecret:<24}{_field(s, 'expiration') or '<forever>':<22}{usages:<28}"
              f"{_field(s, 'description') or '<none>':<24}{_field(s, 'auth-extra-groups')}")
    return 0


async def _delete(args: argparse.Namespace) -> int:
    from kybernetes.auth.tokens import BOOTSTRAP_SECRET_PREFIX
    from kybernetes.client.errors import NotFound

    rc = 0
    async with _client(args) as c:
        api = c.resource("", "v1", "secrets")
        for t in args.tokens:
            tid = t.split(".", 1)[0]
            try:
                await api.delete(BOOTSTRAP_SECRET_PREFIX + tid, "kube-system")
                print(f"bootstrap token {tid!r} deleted")
            except NotFound:
                print(f"kyb token: bootstrap token {tid!r} not found", file=sys.stderr)
                rc = 1
    return rc


def run(args: argparse.Namespace) -> int:
    fn = {"create": _create, "list": _list, "delete": _delete}[args.token_command]
    return asyncio.run(fn(args))
