"""Secrets: sensitive data, typed; `stringData` is folded into `data` on write, as upstream's
conversion does, so it is never stored."""

from __future__ import annotations

import base64
from typing import Any

from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    immutable,
    required,
    too_long,
)
from kybernetes.registry.core.configmaps import MAX_SIZE, decoded_len, immutable_causes, key_causes

SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
# per type: keys data must hold
_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_D = "io.k8s.api.core.v1.Secret"


class SecretStrategy(Strategy):
    """core/v1 Secret."""

    group = ""
    version = "v1"
    kind = "Secret"
    resource = "secrets"
    singular = "secret"
    tracks_generation = False

    columns = (NAME_COLUMN, column("Type", doc=(_D, "type")), column("Data", doc=(_D, "data")), AGE_COLUMN)
    field_selectors = {"type": lambda o: o.get("type") or ""}

    def default(self, obj: Obj) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if string_data:
            data = obj.get("data") or {}
            for k, v in string_data.items():  # stringData wins over data
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data

    def validate(self, obj: Obj) -> list[Cause]:
        data = obj.get("data") or {}
        causes = key_causes(data, "data")
        t = obj.get("type") or ""
        if t == "kubernetes.io/service-account-token":
            if not dig(obj, "metadata", "annotations", SERVICE_ACCOUNT_NAME_ANNOTATION):
                causes.append(required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]"))
        elif t == "kubernetes.io/basic-auth":
            if "username" not in data and "password" not in data:
                causes += [required("data[username]"), required("data[password]")]
        for key in _REQUIRED_KEYS.get(t, ()):
            if key not in data:
                causes.append(required(f"data[{key}]"))
        if sum(decoded_len(v) for v in data.values()) > MAX_SIZE:
            causes.append(too_long("data", MAX_SIZE))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        if (new.get("type") or "") != (old.get("type") or ""):
            causes.append(immutable("type", new.get("type") or ""))
        # stringData was folded into data before this runs, so data covers it
        return causes + immutable_causes(new, old, ("data",)) + self.validate(new)

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], obj.get("type") or "", len(obj.get("data") or {}), age_of(obj)]
