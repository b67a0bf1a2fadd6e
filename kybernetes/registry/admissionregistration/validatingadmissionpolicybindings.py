"""ValidatingAdmissionPolicyBindings: which requests a policy applies to, with which params
and which actions (Deny, Warn, Audit) its failures take."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.admissionregistration import _policies
from kybernetes.registry.base import AGE_COLUMN, NAME_COLUMN, Cause, Column, Obj, Strategy, age_of, selector_string


class ValidatingAdmissionPolicyBindingStrategy(Strategy):
    """admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding (cluster-scoped)."""

    group = "admissionregistration.k8s.io"
    version = "v1"
    kind = "ValidatingAdmissionPolicyBinding"
    resource = "validatingadmissionpolicybindings"
    singular = "validatingadmissionpolicybinding"
    namespaced = False
    categories = ("api-extensions",)
    columns = (
        NAME_COLUMN,
        Column("PolicyName", "string", "", "PolicyName indicates the policy definition which the policy binding "
                                           "binded to"),
        Column("ParamRef", "string", "", "ParamRef indicates the param resource which sets the configration param"),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        _policies.default_binding(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return _policies.validate_binding(obj)

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        ref = spec.get("paramRef")
        param = "<unset>"
        if ref:
            if ref.get("name"):
                param = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else f"*/{ref['name']}"
            elif ref.get("selector") is not None:
                param = selector_string(ref["selector"])
        return [obj["metadata"]["name"], spec.get("policyName", ""), param, age_of(obj)]
