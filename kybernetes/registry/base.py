"""The base strategy every resource's registry module refines.

A registry module (`registry/<group>/<resource>.py`) tells everything about one
resource: its identity in the API, what create and update may change, when
generation moves, validation, printer columns and field selectors.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, ClassVar, Optional

from kybernetes.api.goformat import go_quote

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
# upstream's default table (kinds without a printer, e.g. Role, LimitRange): NAME, CREATED AT
CREATED_AT_COLUMN = Column("Created At", "date", "", AGE_COLUMN.description)


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
    # (rbac, certificatesigningrequests; IPAddress, whose validate() adds the IP rule)
    name_format: ClassVar[str] = "dns1123-subdomain"
    # metadata a status-subresource write may not change (upstream ResetObjectMetaForStatus;
    # the apps kinds reset less, so their controllers can write annotations with status)
    status_reset_meta: ClassVar[tuple[str, ...]] = ("labels", "annotations", "finalizers", "ownerReferences")
    # False for create-only "review" resources the server answers without storing
    persisted: ClassVar[bool] = True
    # True when the spec/status split exists: status is dropped on create and on
    # main-resource updates, and the status subresource changes only status.
    has_status_split: ClassVar[bool] = False
    # False for kinds upstream gives no metadata.generation (ConfigMap, Secret, Node, RBAC, ...):
    # generation is then neither set on create nor moved on update.
    tracks_generation: ClassVar[bool] = True
    # True where upstream's store sets ReturnDeletedObject: DELETE then answers with the
    # deleted object; otherwise an immediate delete answers a Status naming it (a delete
    # that only marks the object terminating answers the object either way)
    return_deleted_object: ClassVar[bool] = False
    # per-kind field selector attributes beyond metadata.name / metadata.namespace
    field_selectors: ClassVar[dict[str, Callable[[Obj], Any]]] = {}
    columns: ClassVar[tuple[Column, ...]] = (NAME_COLUMN, AGE_COLUMN)
    # A resource served as a view of another one's stored objects (upstream keeps one etcd
    # resource behind several API groups, e.g. events.k8s.io/v1 Events are core/v1 Events):
    # (group, version, resource) of the stored resource; from_storage / to_storage convert.
    stored_as: ClassVar[Optional[tuple[str, str, str]]] = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    # ----- storage form (only for views: `stored_as` set) -----
    def from_storage(self, obj: Obj) -> Obj:
        """This resource's form of an object read in the stored resource's form."""
        return obj

    def to_storage(self, obj: Obj) -> Obj:
        """The stored resource's form of an object of this resource (a new dict; metadata
        may be shared)."""
        return obj

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

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Extra rules for writes through the status subresource."""
        return []

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        """Whether an update moves metadata.generation (spec changes, by default)."""
        if not self.tracks_generation:
            return False
        keys = set(new) | set(old)
        ignored = {"apiVersion", "kind", "metadata", "status"}
        return any(new.get(k) != old.get(k) for k in keys - ignored)

    def warnings_on_create(self, obj: Obj) -> list[str]:
        """Warning headers upstream returns for this create (deprecations, odd values)."""
        return []

    def warnings_on_update(self, new: Obj, old: Obj) -> list[str]:
        """Warning headers upstream returns for this update."""
        return []

    # ----- presentation -----
    def row(self, obj: Obj) -> list[Any]:
        """Cells for `columns`, in order."""
        return [obj["metadata"]["name"], age_of(obj)]

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


# ----- clock (tests replace `now` to get stable AGE-like cells) -----
def now() -> _dt.datetime:
    """The current time; every printer column that shows a duration asks this."""
    return _dt.datetime.now(_dt.timezone.utc)


def since(timestamp: Optional[str]) -> str:
    """How long ago an RFC 3339 timestamp was, as kubectl prints it ("<unknown>" if unset)."""
    from kybernetes.api.meta import human_duration, parse_time

    ts = parse_time(timestamp or "")
    if ts is None:
        return "<unknown>"
    return human_duration((now() - ts).total_seconds())


def age_of(obj: Obj) -> str:
    """The AGE cell of an object, on the module clock."""
    return since(dig(obj, "metadata", "creationTimestamp"))


# ----- field errors, formatted as upstream's field.Error.ErrorBody() -----
def go_value(value: Any) -> str:
    """Render a bad value the way upstream's field errors print it (%q, %v or %#v)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        inner = ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    return repr(value)


def _body(kind: str, value: Any = None, detail: str = "", *, show_value: bool = True) -> str:
    s = f"{kind}: {go_value(value)}" if show_value else kind
    return f"{s}: {detail}" if detail else s


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", path, _body("Required value", detail=detail, show_value=False))


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause("FieldValueInvalid", path, _body("Invalid value", value, detail))


def not_supported(path: str, value: Any, valid: list[str] | tuple[str, ...]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(v) for v in valid) if valid else ""
    return Cause("FieldValueNotSupported", path, _body("Unsupported value", value, detail))


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", path, _body("Duplicate value", value))


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, _body("Forbidden", detail=detail, show_value=False))


def not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", path, _body("Not found", value))


def too_long(path: str, max_bytes: int) -> Cause:
    return Cause("FieldValueTooLong", path,
                 _body("Too long", detail=f"may not be more than {max_bytes} bytes", show_value=False))


def too_many(path: str, actual: int, maximum: int) -> Cause:
    return Cause("FieldValueTooMany", path, _body("Too many", actual, f"must have at most {maximum} items"))


def immutable(path: str, value: Any) -> Cause:
    """upstream ValidateImmutableField."""
    return invalid(path, value, "field is immutable")


def spec_diff_summary(type_name: str, changed: list[str]) -> str:
    """Stands in for the cmp.Diff upstream appends to "spec is immutable" errors: the changed fields."""
    return f"  core.{type_name}{{\n" + "".join(f"  \t{k}: changed\n" for k in changed) + "  }\n"


def nonnegative(path: str, value: Any) -> list[Cause]:
    """upstream ValidateNonnegativeField."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


# ----- label helpers shared by printers and selectors -----
def format_labels(labels: Optional[dict[str, str]]) -> str:
    """upstream labels.FormatLabels: sorted k=v pairs, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def selector_string(selector: Optional[Obj]) -> str:
    """A metav1.LabelSelector as upstream's labels.Selector.String() ("" when it selects all/nothing)."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), sorted(e.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
        else:
            return "<error>"
    reqs.sort(key=lambda r: r[0])  # upstream sorts requirements by key (stable)
    return ",".join(r for _, r in reqs)


def format_label_selector(selector: Optional[Obj]) -> str:
    """upstream metav1.FormatLabelSelector: like selector_string, "<none>" when empty."""
    return selector_string(selector) or "<none>"


def selector_matches(selector: Optional[Obj], labels: Optional[dict[str, str]]) -> bool:
    """Whether a metav1.LabelSelector selects `labels` (an empty selector selects everything)."""
    labels = labels or {}
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key", ""), e.get("operator", ""), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ----- quantities (resource.Quantity), enough to compare and print -----
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DEC = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
        "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QTY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$")


def parse_quantity(value: Any) -> Optional[Fraction]:
    """The numeric value of a quantity ("100m", "1Gi", "2", 0.5); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    m = _QTY.match(value.strip())
    if not m:
        return None
    number = Fraction(m.group(1))
    if m.group(3) is not None:
        return number * Fraction(10) ** int(m.group(3))
    suffix = m.group(2) or ""
    return number * (_BIN[suffix] if suffix in _BIN else _DEC[suffix])


# ----- API field documentation, for column descriptions -----
_DOCS: Optional[dict[str, Any]] = None


def swagger_doc(definition: str, field_name: str) -> str:
    """The schema description of `definition.field_name` ("io.k8s.api.core.v1.PodStatus", "podIP"),
    as upstream fills column descriptions from SwaggerDoc(); "" when unknown."""
    global _DOCS
    if _DOCS is None:
        try:
            from kybernetes.api.schema import raw_definitions

            _DOCS = raw_definitions()
        except (ImportError, OSError, ValueError, KeyError):
            _DOCS = {}
    return str(dig(_DOCS, definition, "properties", field_name, "description", default="") or "")


def column(name: str, type_: str = "string", doc: tuple[str, str] | str = "", *, priority: int = 0,
           format_: str = "") -> Column:
    """A Column whose description comes from the schema when `doc` is (definition, field)."""
    description = swagger_doc(*doc) if isinstance(doc, tuple) else doc
    return Column(name, type_, format_, description, priority)


CONTAINERS_COLUMN = Column("Containers", "string", "", "Names of each container in the template.", 1)
IMAGES_COLUMN = Column("Images", "string", "", "Images referenced by each container in the template.", 1)


def container_cells(containers: Optional[list[Obj]]) -> tuple[str, str]:
    """upstream layoutContainerCells: comma-joined names and images."""
    cs = containers or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def created_at_row(obj: Obj) -> list[Any]:
    """Cells of upstream's default table: the name and the creation timestamp as stored."""
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp") or None]
