"""The base strategy every resource's registry module refines.

A registry module (`registry/<group>/<resource>.py`) tells everything about one
resource: its identity in the API, what create and update may change, when
generation moves, validation, printer columns and field selectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

Obj = dict[str, Any]


@dataclass(frozen=True)
class Cause:
    """One field error, as a `Status.details.causes` entry."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, FieldValueTooLong
    field: str  # e.g. "spec.replicas" or "metadata.labels"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class Column:
    """A Table column (meta.k8s.io/v1 TableColumnDefinition)."""

    name: str
    type: str = "string"  # string, integer, number, boolean, date
    format: str = ""  # "name" for the NAME column, "" otherwise
    description: str = ""
    priority: int = 0  # 1 = shown only with -o wide

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = Column("Name", "string", "name", "Name must be unique within a namespace.")
AGE_COLUMN = Column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.")


class Strategy:
    """Defaults that fit most resources; registry modules override what differs."""

    group: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = ""
    resource: ClassVar[str] = ""  # plural, e.g. "deployments"
    singular: ClassVar[str] = ""
    namespaced: ClassVar[bool] = True
    short_names: ClassVar[tuple[str, ...]] = ()
    categories: ClassVar[tuple[str, ...]] = ()
    verbs: ClassVar[tuple[str, ...]] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    # subresources served besides the main resource: "status", "scale", "binding", ...
    subresources: ClassVar[tuple[str, ...]] = ()
    # subresources upstream serves for this resource that kybernetes does not serve yet
    # (listed so discovery and docs can say what is missing; never routed)
    future_subresources: ClassVar[tuple[str, ...]] = ()
    # names: "dns1123-subdomain" (most), "dns1123-label" (namespaces, services), "path-segment"
    # (rbac, certificatesigningrequests), "ip-address" (networking.k8s.io IPAddress)
    name_format: ClassVar[str] = "dns1123-subdomain"
    # True when the spec/status split exists: status is dropped on create and on
    # main-resource updates, and the status subresource changes only status.
    has_status_split: ClassVar[bool] = False
    # per-kind field selector attributes beyond metadata.name / metadata.namespace
    field_selectors: ClassVar[dict[str, Callable[[Obj], Any]]] = {}
    columns: ClassVar[tuple[Column, ...]] = (NAME_COLUMN, AGE_COLUMN)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    # ----- lifecycle hooks (mutate in place) -----
    def prepare_for_create(self, obj: Obj) -> None:
        """Reset fields a client may not set on create (e.g. status)."""
        if self.has_status_split:
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Main-resource update: status is kept from `old` where the split exists."""
        if self.has_status_split:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """Status-subresource update: everything but status (and metadata labels/annotations
        kept by the caller) comes from `old`."""
        for k in list(new):
            if k not in ("apiVersion", "kind", "metadata", "status"):
                del new[k]
        for k, v in old.items():
            if k not in ("apiVersion", "kind", "metadata", "status"):
                new[k] = v

    def default(self, obj: Obj) -> None:
        """Apply upstream defaulting."""

    def validate(self, obj: Obj) -> list[Cause]:
        """Semantic validation on create (schema checks run separately)."""
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Semantic validation on update; defaults to create rules."""
        return self.validate(new)

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        """Whether an update moves metadata.generation (spec changes, by default)."""
        keys = set(new) | set(old)
        ignored = {"apiVersion", "kind", "metadata", "status"}
        return any(new.get(k) != old.get(k) for k in keys - ignored)

    # ----- presentation -----
    def row(self, obj: Obj) -> list[Any]:
        """Cells for `columns`, in order."""
        from kybernetes.api.meta import age  # local import: api.meta is light

        return [obj["metadata"]["name"], age(obj)]

    def field_values(self, obj: Obj) -> dict[str, Any]:
        """Values field selectors can match."""
        meta = obj.get("metadata", {})
        out: dict[str, Any] = {"metadata.name": meta.get("name", "")}
        if self.namespaced:
            out["metadata.namespace"] = meta.get("namespace", "")
        for k, fn in self.field_selectors.items():
            try:
                out[k] = fn(obj)
            except (KeyError, TypeError, AttributeError):
                out[k] = ""
        return out


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    """Read a nested value (dicts and list indexes) without KeyError noise."""
    cur = obj
    for p in path:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return default
        if cur is None:
            return default
    return cur


def optional_str(value: Optional[Any], empty: str = "<none>") -> str:
    return empty if value in (None, "", [], {}) else str(value)
