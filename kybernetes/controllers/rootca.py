"""The root CA certificate publisher (upstream pkg/controller/certificates/
rootcacertpublisher).

Every namespace gets a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the PEM bundle
clients use to verify the API server, annotated with what it is for.  It is kept equal
to the CA: edited, it is put back; deleted, it is created again.  The CA is given to
the controller (the manager reads it from its kubeconfig's certificate-authority).
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Union

from kybernetes.client.errors import APIStatusError, NotFound
from kybernetes.client.rest import Client
from kybernetes.client.workqueue import RateLimiter
from kybernetes.controllers.base import Controller, InformerFactory
from kybernetes.controllers.serviceaccounts import namespace_terminating_error

__all__ = ["RootCACertPublisher", "ROOT_CA_CONFIGMAP", "DESCRIPTION_ANNOTATION", "DESCRIPTION", "desired_data"]

Obj = dict[str, Any]

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def desired_data(root_ca: str) -> dict[str, str]:
    return {"ca.crt": root_ca}


class RootCACertPublisher(Controller):
    """Publishes the cluster CA as `kube-root-ca.crt` in every namespace."""

    name = "root-ca-cert-publisher"
    workers = 2

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        root_ca: Union[str, bytes],
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
    ) -> None:
        if isinstance(root_ca, bytes):
            root_ca = root_ca.decode("utf-8")
        if not root_ca:
            raise ValueError("root-ca-cert-publisher: no CA given")
        self.root_ca = root_ca
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)

    def setup(self) -> None:
        self.cm_api = self.client.resource("", "v1", "configmaps", namespaced=True)
        self.namespaces = self.watch("", "v1", "namespaces", enqueue=None)
        self.namespaces.add_handlers(on_add=self._namespace_added, on_update=self._namespace_updated)
        # only our ConfigMaps: no need to cache every ConfigMap of the cluster
        self.configmaps = self.watch("", "v1", "configmaps", field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}",
                                     enqueue=None)
        self.configmaps.add_handlers(on_update=self._configmap_updated, on_delete=self._configmap_deleted)

    # ------------------------------------------------------------------ events
    def _namespace_added(self, ns: Obj) -> None:
        self.queue.add(ns["metadata"]["name"])

    def _namespace_updated(self, old: Obj, new: Obj) -> None:
        if ((new.get("status") or {}).get("phase") or "Active") != "Active":
            return
        self.queue.add(new["metadata"]["name"])

    def _configmap_updated(self, old: Obj, new: Obj) -> None:
        self._configmap_deleted(new)

    def _configmap_deleted(self, cm: Obj) -> None:
        meta = cm.get("metadata") or {}
        if meta.get("name") == ROOT_CA_CONFIGMAP and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> None:
        data = desired_data(self.root_ca)
        cm = self.configmaps.get(f"{key}/{ROOT_CA_CONFIGMAP}")
        if cm is None:
            ns = self.namespaces.get(key)
            if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
                return  # gone or going: nothing to publish into
            body = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": key,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": data,
            }
            try:
                await self.cm_api.create(body, key)
                self.log.info("namespace %s: published %s", key, ROOT_CA_CONFIGMAP)
            except NotFound:
                return  # the namespace does not exist (any more)
            except APIStatusError as e:
                if namespace_terminating_error(e):
                    return
                raise  # AlreadyExists included: the cache is behind, the update event brings us back
            return

        annotations = (cm.get("metadata") or {}).get("annotations") or {}
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        new = copy.deepcopy(cm)
        new["data"] = data
        new["metadata"].setdefault("annotations", {})
        if new["metadata"]["annotations"] is None:
            new["metadata"]["annotations"] = {}
        new["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = DESCRIPTION
        try:
            # conditional on the cached resourceVersion: a conflict retries from a fresher cache
            await self.cm_api.update(new, key)
            self.log.info("namespace %s: restored %s", key, ROOT_CA_CONFIGMAP)
        except NotFound:
            return  # deleted meanwhile: the delete event enqueues it again
