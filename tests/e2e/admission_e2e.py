"""Helpers of the admission end-to-end suites (webhooks, ValidatingAdmissionPolicy):
a namespace labelled for one test (the configurations select it), cluster objects
deleted after the test, and waiting for configurations, which reach the admission
chain through a watch a moment after they are written (as upstream)."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any, Callable, Iterator, Optional

from kubernetes import client
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


def until(fn: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Re-run `fn` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        out = fn()
        if out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def refused(fn: Callable[[], Any]) -> Optional[ApiException]:
    """The ApiException `fn()` raises, or None when it succeeds."""
    try:
        fn()
    except ApiException as e:
        return e
    return None


def dry_run_create_refused(core: client.CoreV1Api, ns: str, cm: client.V1ConfigMap) -> Callable[[], Optional[ApiException]]:
    """A probe for `until`: the refusal of a dry-run create of `cm` in `ns`, if any."""
    return lambda: refused(lambda: core.create_namespaced_config_map(ns, cm, dry_run="All"))


@contextlib.contextmanager
def labelled_namespace(api: client.ApiClient, prefix: str, label: str) -> Iterator[str]:
    """A fresh namespace `<prefix>-<random>` labelled `<label>: <its name>`, deleted after."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{secrets.token_hex(4)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={label: name})))
    try:
        yield name
    finally:
        core.delete_namespace(name)


@contextlib.contextmanager
def deleted_after() -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Yields `later(delete)`: every delete given is called on exit, newest first; an
    object already gone (404) is fine."""
    deletes: list[Callable[[], Any]] = []
    try:
        yield deletes.append
    finally:
        for delete in reversed(deletes):
            try:
                delete()
            except ApiException as e:
                if e.status != 404:
                    raise


def requests_named(hooks: Any, path: str, name: str) -> list[Obj]:
    """The AdmissionReview requests the webhook server got on `path` for objects named `name`."""
    return [r["request"] for r in hooks.requests_to(path) if r["request"].get("name") == name]
