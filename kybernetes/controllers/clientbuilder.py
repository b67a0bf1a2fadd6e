"""Per-controller credentials, as kube-controller-manager's `--use-service-account-credentials`:
each controller talks to the API server as the service account `kube-system/<name>`
(bound by the bootstrap policy to `system:controller:<name>`), with a token from the
TokenRequest API that is renewed before it expires.  The manager's own identity
(`system:kube-controller-manager`) only creates those service accounts and tokens and runs
the shared informers, which is all upstream's role for it allows.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import random
from pathlib import Path
from typing import Any, Optional, Union

from kybernetes.client.errors import AlreadyExists, NotFound
from kybernetes.client.kubeconfig import load_kubeconfig, ssl_context
from kybernetes.client.rest import Client

__all__ = ["SAClientBuilder", "CONTROLLER_SERVICE_ACCOUNTS", "service_account_for"]

log = logging.getLogger("kybernetes.controllers.clientbuilder")

NAMESPACE = "kube-system"
# upstream's controller client builder asks for one-hour tokens
TOKEN_EXPIRATION = 3600

# Our controller names -> the service account upstream's controller runs as (the names
# cmd/kube-controller-manager passes to ClientBuilder.ClientOrDie).
CONTROLLER_SERVICE_ACCOUNTS = {
    "namespace": "namespace-controller",
    "serviceaccount": "service-account-controller",
    "clusterrole-aggregation": "clusterrole-aggregation-controller",
    "garbagecollector": "generic-garbage-collector",
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replication-controller",
    "deployment": "deployment-controller",
    "statefulset": "statefulset-controller",
    "daemonset": "daemon-set-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "resourcequota": "resourcequota-controller",
    "disruption": "disruption-controller",
    "endpoints": "endpoint-controller",
    "endpointslice": "endpointslice-controller",
    "nodelifecycle": "node-controller",
    # upstream's taint eviction controller keeps the node controller's identity
    "taint-eviction-controller": "node-controller",
    "node-ipam": "node-controller",
    "podgc": "pod-garbage-collector",
    "horizontalpodautoscaler": "horizontal-pod-autoscaler",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "csrsigning": "certificate-controller",
    "csrapproving": "certificate-controller",
    "csrcleaner": "certificate-controller",
    "persistentvolume-binder": "persistent-volume-binder",
    "pvc-protection": "pvc-protection-controller",
    "pv-protection": "pv-protection-controller",
}

# Controllers upstream runs with the controller manager's own credentials (the root client
# builder), not a service account of their own.
RUNS_AS_MANAGER = {"tokens-controller"}


def service_account_for(spec: Any) -> Optional[str]:
    """The service account a controller factory (class, partial or instance) runs as."""
    name = getattr(spec, "name", None) or getattr(getattr(spec, "func", None), "name", None)
    return CONTROLLER_SERVICE_ACCOUNTS.get(name or "")


class _TokenClient:
    """A client whose bearer token is a TokenRequest token, renewed in the background."""

    def __init__(self, client: Client, builder: "SAClientBuilder", sa: str) -> None:
        self.client = client
        self.builder = builder
        self.sa = sa
        self.task: Optional[asyncio.Task[None]] = None

    async def refresh(self) -> float:
        """Fetch a new token; answers the seconds until it should be renewed."""
        token, expires = await self.builder.request_token(self.sa)
        self.client.token = token
        lifetime = max(0.0, (expires - _dt.datetime.now(_dt.timezone.utc)).total_seconds())
        # renew at 70-90% of the lifetime, so a burst of controllers do not all renew at once
        return lifetime * random.uniform(0.7, 0.9)

    async def run(self, delay: float) -> None:
        backoff = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                delay = await self.refresh()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep the old token and retry
                log.warning("renewing the token of %s/%s failed: %s", NAMESPACE, self.sa, e)
                delay, backoff = backoff, min(backoff * 2, 60.0)


class SAClientBuilder:
    """Makes one client per controller service account from the manager's kubeconfig."""

    def __init__(self, kubeconfig: Union[str, Path], root: Client, *, expiration: int = TOKEN_EXPIRATION) -> None:
        cfg = load_kubeconfig(kubeconfig)
        # the same server and CA, but no client certificate: the token is the identity
        cfg.cert_pem = cfg.key_pem = None
        cfg.token = None
        self.cfg = cfg
        self.root = root
        self.expiration = expiration
        self._clients: dict[str, _TokenClient] = {}

    async def request_token(self, sa: str) -> tuple[str, _dt.datetime]:
        """A token for kube-system/<sa>, creating the service account if it is missing."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.expiration}}
        path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{sa}/token"
        try:
            tr = await self.root.request("POST", path, body)
        except NotFound:
            try:
                await self.root.resource("", "v1", "serviceaccounts", namespaced=True).create(
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": NAMESPACE}},
                    NAMESPACE)
            except AlreadyExists:
                pass
            tr = await self.root.request("POST", path, body)
        status = tr.get("status") or {}
        expires = _dt.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
        return status["token"], expires

    async def client_for(self, sa: str) -> Client:
        """The (shared) client acting as kube-system/<sa>."""
        tc = self._clients.get(sa)
        if tc is None:
            client = Client(self.cfg.server, ssl_context(self.cfg), tls_server_name=self.cfg.tls_server_name,
                            user_agent=f"kube-controller-manager/{sa}")
            tc = _TokenClient(client, self, sa)
            try:
                delay = await tc.refresh()
            except BaseException:
                await client.close()
                raise
            tc.task = asyncio.get_running_loop().create_task(tc.run(delay), name=f"token renewal {sa}")
            self._clients[sa] = tc
        return tc.client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for tc in clients:
            if tc.task is not None:
                tc.task.cancel()
                try:
                    await tc.task
                except asyncio.CancelledError:
                    pass
            await tc.client.close()
