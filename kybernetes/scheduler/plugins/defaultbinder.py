"""DefaultBinder: POST pods/<name>/binding with a Binding to the chosen node."""

from __future__ import annotations

from kybernetes.client import APIStatusError, Client
from kybernetes.scheduler.framework import Status

NAME = "DefaultBinder"


class DefaultBinder:
    name = NAME

    def __init__(self, client: Client) -> None:
        self.client = client

    async def bind(self, state, pod, node_name):
        meta = pod["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": meta.get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        try:
            await self.client.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", body)
        except APIStatusError as e:
            return Status.as_error(e)
        return None
