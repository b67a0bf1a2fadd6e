"""Static pods (upstream pkg/kubelet/config/file.go and pod/mirror_client.go): the kubelet
runs the pods described by the manifest files in a directory, without the API, and
shows each one in the API as a mirror pod.

A manifest is one Pod (YAML or JSON) per file; files whose names start with "." are
ignored.  As upstream's applyDefaults: the pod is named `<name>-<node name>`, defaults to
namespace "default", is bound to this node, and gets a UID that hashes its content, the
node and the file — so an edited manifest is a new pod (the old one is stopped) — noted
in the `kubernetes.io/config.hash` annotation, with `kubernetes.io/config.source: file`.

The mirror pod is a copy carrying `kubernetes.io/config.mirror: <hash>` and an owner
reference to the Node; pod status is written to it.  A mirror pod deleted (or left from
an older manifest, or of a manifest that is gone) is replaced or removed.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import yaml

from kybernetes.client import Conflict, NotFound
from kybernetes.client.errors import AlreadyExists
from kybernetes.kubelet.background import BackgroundLoop

log = logging.getLogger("kybernetes.kubelet.static")
Obj = dict[str, Any]

CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
FILE_CHECK_FREQUENCY = 20.0  # upstream --file-check-frequency


class ManifestError(ValueError):
    pass


def is_mirror_pod(pod: Obj) -> bool:
    return CONFIG_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


def static_pod_from_manifest(text: str, filename: str, node_name: str) -> Obj:
    """The static pod a manifest file describes, with upstream's file-source defaults."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ManifestError(f"{filename}: {e}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ManifestError(f"{filename}: a static pod manifest holds exactly one Pod")
    pod = docs[0]
    if pod.get("kind", "Pod") != "Pod" or pod.get("apiVersion", "v1") != "v1":
        raise ManifestError(f"{filename}: want a v1 Pod, got {pod.get('apiVersion')}/{pod.get('kind')}")
    meta = pod.setdefault("metadata", {})
    if not meta.get("name"):
        raise ManifestError(f"{filename}: metadata.name is required")
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    if not meta.get("uid"):
        h = hashlib.md5(json.dumps(pod, sort_keys=True, separators=(",", ":")).encode())
        h.update(f"host:{node_name}".encode())
        h.update(f"file:{filename}".encode())
        meta["uid"] = h.hexdigest()
    meta["name"] = f"{meta['name']}-{node_name.lower()}"
    meta["namespace"] = meta.get("namespace") or "default"
    ann = meta.setdefault("annotations", {})
    ann[CONFIG_HASH] = meta["uid"]
    ann[CONFIG_SOURCE] = "file"
    pod.setdefault("spec", {})["nodeName"] = node_name
    pod.pop("status", None)
    return pod


def read_manifests(directory: Path, node_name: str) -> tuple[dict[str, Obj], list[str]]:
    """{uid: static pod} of every valid manifest in `directory`, and the errors."""
    pods: dict[str, Obj] = {}
    errors: list[str] = []
    if not directory.is_dir():
        return pods, errors
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        try:
            pod = static_pod_from_manifest(p.read_text(), str(p), node_name)
        except (ManifestError, OSError, UnicodeDecodeError) as e:
            errors.append(str(e))
            continue
        pods[pod["metadata"]["uid"]] = pod
    return pods, errors


def mirror_pod(static: Obj, node_name: str, node_uid: str) -> Obj:
    """The API copy of a static pod."""
    m = copy.deepcopy(static)
    meta = m["metadata"]
    meta.pop("uid", None)
    meta.pop("resourceVersion", None)
    meta["annotations"][CONFIG_MIRROR] = static["metadata"]["annotations"][CONFIG_HASH]
    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid,
                                "controller": True}]
    return m


class StaticPods(BackgroundLoop):
    """Keeps the pod workers in step with the manifest directory and the API's mirror pods
    in step with the static pods."""

    def __init__(self, client, workers, *, directory: Path, node_name: str, node_uid: Callable[[], str],
                 mirrors: Callable[[], list[Obj]], period: float = FILE_CHECK_FREQUENCY):
        self.pods_api = client.resource("", "v1", "pods", namespaced=True)
        self.workers = workers
        self.directory = Path(directory)
        self.node_name = node_name
        self.node_uid = node_uid
        self.mirrors = mirrors  # the mirror pods of this node (the kubelet's informer cache)
        self.period = period
        self.pods: dict[str, Obj] = {}
        self._kick = asyncio.Event()
        self._errors: set[str] = set()

    def kick(self) -> None:
        """Look again now (a mirror pod changed)."""
        self._kick.set()

    async def sync(self) -> None:
        desired, errors = await asyncio.to_thread(read_manifests, self.directory, self.node_name)
        for e in set(errors) - self._errors:
            log.warning("static pod manifest: %s", e)
        self._errors = set(errors)
        for uid in [u for u in self.pods if u not in desired]:
            old = self.pods.pop(uid)
            grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds")
            self.workers.removed(old, grace=30 if grace is None else int(grace))
        for uid, pod in desired.items():
            if uid not in self.pods:
                log.info("static pod %s/%s from the manifest directory", pod["metadata"]["namespace"],
                         pod["metadata"]["name"])
                self.pods[uid] = pod
                self.workers.update(pod)
        await self.sync_mirrors()

    async def sync_mirrors(self) -> None:
        by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in self.pods.values()}
        existing = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in self.mirrors()}
        for key, m in existing.items():
            static = by_name.get(key)
            current = static is not None and not m["metadata"].get("deletionTimestamp") and \
                m["metadata"]["annotations"].get(CONFIG_MIRROR) == static["metadata"]["uid"]
            if not current:
                await self._delete(m)
                if static is None:
                    continue
                existing[key] = None  # type: ignore[assignment]
        for key, static in by_name.items():
            if existing.get(key) is None:
                await self._create(static)

    async def _delete(self, m: Obj) -> None:
        meta = m["metadata"]
        log.info("deleting mirror pod %s/%s", meta["namespace"], meta["name"])
        try:
            await self.pods_api.delete(meta["name"], meta["namespace"], grace_period_seconds=0,
                                       preconditions={"uid": meta["uid"]})
        except (NotFound, Conflict):
            pass

    async def _create(self, static: Obj) -> None:
        uid = self.node_uid()
        if not uid:
            return  # not registered yet: the next pass creates it
        try:
            await self.pods_api.create(mirror_pod(static, self.node_name, uid))
        except AlreadyExists:
            return  # a pod of that name that is not our mirror: the next pass replaces it
        except Exception as e:  # noqa: BLE001 - admission may refuse it; the static pod still runs
            log.warning("creating the mirror pod of %s: %s", static["metadata"]["name"], e)
            return
        # the status of the static pod now has somewhere to go
        self.workers.status_target_changed(static["metadata"]["uid"])

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the next period tries again
                log.warning("static pods: %s", e)
            try:
                await asyncio.wait_for(self._kick.wait(), self.period)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
