"""Who may do what: the API server's authenticators, authorizer chain and RBAC bootstrap
policy, assembled at start-up from the library in kybernetes.auth."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from kybernetes.apiserver.objects import ObjectStore, object_key
from kybernetes.auth import bootstrap_policy
from kybernetes.auth.authorizer import Decision, as_access_check, attributes_from_dict, build_authorizer
from kybernetes.auth.node_authorizer import start_node_authorizer
from kybernetes.auth.rbac import RBACAuthorizer, rbac_source_from_objects
from kybernetes.auth.serviceaccount_tokens import (
    DEFAULT_ISSUER,
    ServiceAccountTokenAuthenticator,
    TokenIssuer,
    load_public_keys,
)
from kybernetes.auth.tokens import BootstrapTokenAuthenticator, TokenFileAuthenticator, UnionTokenAuthenticator
from kybernetes.storage.interface import ConflictError, KeyExistsError, KeyNotFoundError

log = logging.getLogger("kybernetes.security")

Obj = dict[str, Any]


class CacheLookup:
    """Current objects for token checks, from the watch caches with a store fallback."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def _get(self, group: str, resource: str, namespace: str, name: str) -> Optional[Obj]:
        from kybernetes.api.catalog import default_catalog

        s = default_catalog().lookup(group, "v1", resource)
        kv = await self.objects.read(s, object_key(s, namespace, name))
        return self.objects.decode(kv) if kv is not None else None

    async def get_service_account(self, namespace: str, name: str) -> Optional[Obj]:
        return await self._get("", "serviceaccounts", namespace, name)

    async def get_secret(self, namespace: str, name: str) -> Optional[Obj]:
        return await self._get("", "secrets", namespace, name)

    async def get_pod(self, namespace: str, name: str) -> Optional[Obj]:
        return await self._get("", "pods", namespace, name)

    async def get_node(self, name: str) -> Optional[Obj]:
        return await self._get("", "nodes", "", name)


@dataclass
class Security:
    tokens: UnionTokenAuthenticator
    issuer: TokenIssuer
    public_keys: list
    chain: Any
    rbac: Optional[RBACAuthorizer]
    lookup: CacheLookup
    anonymous: bool = True

    def __post_init__(self) -> None:
        self._access = as_access_check(self.chain)  # built once: every request asks it

    async def access(self, user: Any, attrs: Obj) -> tuple[bool, bool, str]:
        return await self._access(user, attrs)

    async def authorize(self, user: Any, attrs: Obj) -> tuple[Decision, str]:
        return await self.chain.authorize(attributes_from_dict(user, attrs))


async def build(objects: ObjectStore, *, sa_key: Path, sa_pub: Union[Path, Sequence[Path]], authorization_mode: str,
                token_auth_file: str = "", issuer: str = "", anonymous: bool = True) -> Security:
    """Authenticators and the authorizer chain; call after the system namespaces exist."""
    token_issuer = await asyncio.to_thread(TokenIssuer.from_file, sa_key, issuer or DEFAULT_ISSUER)
    pub_files = [sa_pub] if isinstance(sa_pub, (str, Path)) else list(sa_pub)
    public_keys = [k for f in pub_files for k in await asyncio.to_thread(load_public_keys, f)]
    lookup = CacheLookup(objects)
    authenticators: list[Any] = []
    if token_auth_file:
        authenticators.append(await asyncio.to_thread(TokenFileAuthenticator.from_file, token_auth_file))
    authenticators.append(BootstrapTokenAuthenticator(lambda ns, name: lookup.get_secret(ns, name)))
    authenticators.append(ServiceAccountTokenAuthenticator(
        public_keys, issuers=[token_issuer.issuer], api_audiences=[token_issuer.issuer], lookup=lookup))
    tokens = UnionTokenAuthenticator(authenticators, api_audiences=[token_issuer.issuer])
    modes = [m.strip() for m in authorization_mode.split(",") if m.strip()]
    rbac = RBACAuthorizer(await rbac_source_from_objects(objects)) if "RBAC" in modes else None
    node = await start_node_authorizer(objects) if "Node" in modes else None
    chain = build_authorizer(modes, rbac=rbac, node=node)
    return Security(tokens, token_issuer, public_keys, chain, rbac, lookup, anonymous)


# ---------------------------------------------------------------------- bootstrap policy
_RBAC_KINDS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
               "Role": "roles", "RoleBinding": "rolebindings"}


async def _existing_rbac(objects: ObjectStore) -> list[Obj]:
    out: list[Obj] = []
    for resource in _RBAC_KINDS.values():
        res = await objects.store.list(f"/registry/rbac.authorization.k8s.io/{resource}/")
        out += [objects.decode(kv) for kv in res.items]
    return out


async def _write(objects: ObjectStore, obj: Obj, *, replace: bool) -> None:
    from kybernetes.api.catalog import default_catalog
    from kybernetes.apiserver.rest import prepare_new_meta

    s = default_catalog().lookup("rbac.authorization.k8s.io", "v1", _RBAC_KINDS[obj["kind"]])
    meta = obj["metadata"]
    key = object_key(s, meta.get("namespace", ""), meta["name"])
    current = await objects.store.get(key)
    if current is None:
        prepare_new_meta(obj, s)
        try:
            await objects.store.create(key, objects.encode(key, obj))
        except KeyExistsError:
            pass
        return
    old = objects.decode(current)
    for k in ("uid", "creationTimestamp"):
        if k in old["metadata"]:
            meta[k] = old["metadata"][k]
    if replace:  # a binding whose roleRef changed is deleted and created again
        try:
            await objects.store.delete(key, current.mod_revision)
        except (KeyNotFoundError, ConflictError):
            return
        prepare_new_meta(obj, s)
        await objects.store.create(key, objects.encode(key, obj))
        return
    try:
        await objects.store.update(key, objects.encode(key, obj), current.mod_revision)
    except (ConflictError, KeyNotFoundError):
        log.info("bootstrap policy: %s/%s changed meanwhile; next start reconciles it", obj["kind"], meta["name"])


async def reconcile_bootstrap_policy(objects: ObjectStore) -> None:
    """Create or top up upstream's default roles and bindings (respecting autoupdate=false)
    and fill aggregated ClusterRoles, as upstream's RBAC post-start hook does."""
    plan = bootstrap_policy.reconcile(await _existing_rbac(objects), bootstrap_policy.desired_objects())
    for obj in plan.create:
        await _write(objects, obj, replace=False)
    for obj in plan.update:
        await _write(objects, obj, replace=False)
    for obj in plan.recreate:
        await _write(objects, obj, replace=True)
    roles = {o["metadata"]["name"]: o for o in await _existing_rbac(objects) if o.get("kind") == "ClusterRole"}
    for name, rules in bootstrap_policy.aggregation_updates(roles.values()).items():
        obj = dict(roles[name], rules=rules)
        obj["metadata"] = dict(obj["metadata"])
        obj["metadata"].pop("resourceVersion", None)
        await _write(objects, obj, replace=False)


def escalation_admission(sec: Security):
    """A validating admission step: RBAC writes may not grant more than the writer holds
    (unless they may `escalate` / `bind`), as upstream's RBAC registry enforces."""
    from kybernetes.apiserver import errors
    from kybernetes.auth.authorizer import StatusError
    from kybernetes.auth.escalation import check_binding_write, check_role_write

    async def check(op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if s.group != "rbac.authorization.k8s.io" or new is None or sec.rbac is None or op not in ("CREATE", "UPDATE"):
            return
        user = r.http["user"]
        try:
            if s.resource in ("roles", "clusterroles"):
                await check_role_write(authorizer=sec.chain, user_rules_fn=sec.rbac.rules_for_user, user=user,
                                       obj=new, old=old, namespace=r.info.namespace, request_name=r.info.name,
                                       cluster=s.resource == "clusterroles")
            elif s.resource in ("rolebindings", "clusterrolebindings"):
                await check_binding_write(authorizer=sec.chain, user_rules_fn=sec.rbac.rules_for_user,
                                          role_ref_rules_fn=sec.rbac.role_ref_rules, user=user, obj=new,
                                          namespace=r.info.namespace, old=old)
        except StatusError as e:
            raise errors.APIError(e.code, e.reason, e.message, details=e.details) from None

    return check


async def ensure_kubelet_bootstrap_bindings(objects: ObjectStore) -> None:
    """The bindings that let bootstrap tokens of the default node-token group request node
    client certificates (auto-approved) and nodes renew their own, created once when
    missing — what `kubeadm init` sets up for `kubeadm join`.  An administrator may edit or
    delete them; they are then left alone until they are missing at a later start."""
    from kybernetes.api.catalog import default_catalog

    s = default_catalog().lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
    for obj in bootstrap_policy.kubelet_bootstrap_bindings():
        if await objects.store.get(object_key(s, "", obj["metadata"]["name"])) is None:
            await _write(objects, obj, replace=False)
