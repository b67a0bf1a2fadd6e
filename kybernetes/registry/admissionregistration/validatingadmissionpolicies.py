"""ValidatingAdmissionPolicies: CEL validations of admission requests, applied by bindings."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.admissionregistration import _policies
from kybernetes.registry.base import AGE_COLUMN, NAME_COLUMN, Cause, Column, Obj, Strategy, age_of


class ValidatingAdmissionPolicyStrategy(Strategy):
    """admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (cluster-scoped, status subresource)."""

    group = "admissionregistration.k8s.io"
    version = "v1"
    kind = "ValidatingAdmissionPolicy"
    resource = "validatingadmissionpolicies"
    singular = "validatingadmissionpolicy"
    namespaced = False
    categories = ("api-extensions",)
    subresources = ("status",)
    has_status_split = True
    columns = (
        NAME_COLUMN,
        Column("Validations", "integer", "", "Validations indicates the number of validation rules defined in this "
                                             "configuration"),
        Column("ParamKind", "string", "", "ParamKind specifies the kind of resources used to parameterize this "
                                          "policy"),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        _policies.default_policy(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return _policies.validate_policy(obj)

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        pk = spec.get("paramKind")
        param_kind = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if pk else "<unset>"
        return [obj["metadata"]["name"], len(spec.get("validations") or []), param_kind, age_of(obj)]
