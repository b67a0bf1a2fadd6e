"""ServiceAccount admission (upstream plugin/pkg/admission/serviceaccount).

On pod create: default `spec.serviceAccountName` to `default`, require the service
account to exist (retrying a moment for `default`, which the service account controller
creates right after the namespace), and unless the pod or the service account opts out
with `automountServiceAccountToken: false`, add the projected `kube-api-access-<rand>`
volume and mount it read-only at /var/run/secrets/kubernetes.io/serviceaccount in every
container and init container that does not already mount something there.  Image pull
secrets of the service account are copied to pods that list none.  Mirror pods are not
changed and may not reference service accounts or API credentials."""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
# serviceaccount.WarnOnlyBoundTokenExpirationSeconds
TOKEN_EXPIRATION_SECONDS = 3607
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String's alphabet


def token_volume_source() -> Obj:
    """TokenVolumeSource(): token + kube-root-ca.crt + the namespace, mode 0644."""
    return {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


def should_automount(sa: Obj, pod: Obj) -> bool:
    """The pod's preference wins, then the service account's; default true."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def mount_service_account_token(pod: Obj, generate_name=None) -> None:
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    volume_name = ""
    for v in volumes:
        if str(v.get("name", "")).startswith(VOLUME_PREFIX):
            volume_name = v["name"]
            break
    has_volume = bool(volume_name)
    if not volume_name:
        volume_name = (generate_name or _generate_name)(VOLUME_PREFIX)
    needs_volume = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH})
            c["volumeMounts"] = mounts
            needs_volume = True
    if not has_volume and needs_volume:
        volumes.append({"name": volume_name, "projected": token_volume_source()})
        spec["volumes"] = volumes


def _generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


class ServiceAccount:
    name = "ServiceAccount"

    def __init__(self, objects: ObjectStore, *, mount_token: bool = True, require_service_account: bool = True,
                 default_attempts: int = 10, retry_interval: Optional[float] = None) -> None:
        self.objects = objects
        self.mount_token = mount_token
        self.require_service_account = require_service_account
        self.default_attempts = default_attempts
        self.retry_interval = retry_interval

    @staticmethod
    def _applies(r: Any) -> bool:
        s = r.strategy
        return s.resource == "pods" and not s.group and lookup.subresource(r) in ("", "ephemeralcontainers")

    async def get_service_account(self, namespace: str, name: str) -> Optional[Obj]:
        """The lister first; on a miss, direct reads — up to 10 for `default`, 100-200ms apart."""
        attempts = self.default_attempts if name == DEFAULT_SERVICE_ACCOUNT else 1
        interval = self.retry_interval if self.retry_interval is not None else (100 + random.randrange(100)) / 1000
        for i in range(max(1, attempts)):
            if i:
                await asyncio.sleep(interval)
            sa = await lookup.get_object(self.objects, "", "v1", "serviceaccounts", namespace, name)
            if sa is not None:
                return sa
        return None

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if op != "CREATE" or new is None or not self._applies(r) or lookup.subresource(r):
            return
        pod = new
        meta = pod.get("metadata") or {}
        spec = pod.setdefault("spec", {})
        if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
            return await self.validate(op, r, new, old)
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        name = spec["serviceAccountName"]
        # the deprecated alias follows serviceAccountName (v1 conversion)
        spec["serviceAccount"] = name
        ns = meta.get("namespace") or r.info.namespace
        sa = await self.get_service_account(ns, name)
        if sa is None:
            if self.require_service_account:
                raise lookup.forbidden(r, meta.get("name", ""),
                                       f"error looking up service account {ns}/{name}: "
                                       f'serviceaccount "{name}" not found')
            sa = {}
        if self.mount_token and should_automount(sa, pod):
            mount_service_account_token(pod)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]]

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        """Mirror pods may not use service accounts or API credentials."""
        if op != "CREATE" or new is None or not self._applies(r) or lookup.subresource(r):
            return
        meta = new.get("metadata") or {}
        if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
            return
        spec = new.get("spec") or {}
        name = meta.get("name", "")
        if spec.get("serviceAccountName"):
            raise lookup.forbidden(r, name, "a mirror pod may not reference service accounts")
        for v in spec.get("volumes") or []:
            if v.get("secret"):
                raise lookup.forbidden(r, name, "a mirror pod may not reference secrets")
            for src in (v.get("projected") or {}).get("sources") or []:
                if src.get("secret"):
                    raise lookup.forbidden(r, name, "a mirror pod may not reference secrets")
                if src.get("serviceAccountToken"):
                    raise lookup.forbidden(r, name, "a mirror pod may not use ServiceAccountToken volume projections")
