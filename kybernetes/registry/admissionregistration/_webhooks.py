"""Rules shared by Mutating- and ValidatingWebhookConfiguration (upstream
pkg/apis/admissionregistration: v1 defaults and validation.go)."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit

from kybernetes.admission import cel
from kybernetes.api import validation as v
from kybernetes.api.goformat import go_quote
from kybernetes.registry._workloads import validate_label_selector
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Column,
    Obj,
    Strategy,
    age_of,
    duplicate,
    invalid,
    not_supported,
    required,
)

FAILURE_POLICIES = ("Fail", "Ignore")
MATCH_POLICIES = ("Equivalent", "Exact")
SIDE_EFFECTS_V1 = ("None", "NoneOnDryRun")
OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES = ("*", "Cluster", "Namespaced")
REINVOCATION_POLICIES = ("IfNeeded", "Never")
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
MAX_MATCH_CONDITIONS = 64


def default_webhook(hook: Obj, *, mutating: bool) -> None:
    """SetDefaults_{Mutating,Validating}Webhook, SetDefaults_Rule and SetDefaults_ServiceReference."""
    hook.setdefault("failurePolicy", "Fail")
    hook.setdefault("matchPolicy", "Equivalent")
    if hook.get("namespaceSelector") is None:
        hook["namespaceSelector"] = {}
    if hook.get("objectSelector") is None:
        hook["objectSelector"] = {}
    hook.setdefault("timeoutSeconds", 10)
    if mutating:
        hook.setdefault("reinvocationPolicy", "Never")
    for rule in hook.get("rules") or []:
        if isinstance(rule, dict) and rule.get("scope") is None:
            rule["scope"] = "*"
    svc = (hook.get("clientConfig") or {}).get("service")
    if isinstance(svc, dict) and svc.get("port") is None:
        svc["port"] = 443


def default_configuration(obj: Obj, *, mutating: bool) -> None:
    for hook in obj.get("webhooks") or []:
        if isinstance(hook, dict):
            default_webhook(hook, mutating=mutating)


def _has_wildcard(items: list[str]) -> bool:
    return "*" in items


def _invalid_list(path: str, items: list[Any], detail: str, go_type: str = "string") -> Cause:
    # upstream prints slices as Go's %#v: []<element type>{"a", "b"}
    rendered = "[]" + go_type + "{" + ", ".join(go_quote(str(i)) for i in items) + "}"
    return Cause("FieldValueInvalid", path, f"Invalid value: {rendered}: {detail}")


def validate_fully_qualified_name(path: str, name: str) -> list[Cause]:
    """utilvalidation.IsFullyQualifiedName."""
    if not name:
        return [required(path)]
    errs = v.is_dns1123_subdomain(name.lower())
    if errs:
        return [invalid(path, name, ",".join(errs))]
    if len(name.split(".")) < 3:
        return [invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def validate_resources(resources: list[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not resources:
        causes.append(required(path))
    with_wild_sub: set[str] = set()
    wild_res_subs: set[str] = set()
    double = single = plain = False
    for i, res_sub in enumerate(resources):
        if res_sub == "":
            causes.append(required(f"{path}[{i}]"))
            continue
        double = double or res_sub == "*/*"
        single = single or res_sub == "*"
        parts = res_sub.split("/", 1)
        if len(parts) == 1:
            # upstream overwrites the flag on every plain entry; the last one decides
            plain = res_sub != "*"
            continue
        res, sub = parts
        if res in with_wild_sub:
            causes.append(invalid(f"{path}[{i}]", res_sub, f"if '{res}/*' is present, must not specify {res_sub}"))
        if sub in wild_res_subs:
            causes.append(invalid(f"{path}[{i}]", res_sub, f"if '*/{sub}' is present, must not specify {res_sub}"))
        if sub == "*":
            with_wild_sub.add(res)
        if res == "*":
            wild_res_subs.add(sub)
    if len(resources) > 1 and double:
        causes.append(_invalid_list(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        causes.append(_invalid_list(path, resources,
                                    "if '*' is present, must not specify other resources without subresources"))
    return causes


def validate_rule(rule: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    ops = rule.get("operations") or []
    if not ops:
        causes.append(required(f"{path}.operations"))
    if len(ops) > 1 and _has_wildcard(ops):
        causes.append(_invalid_list(f"{path}.operations", ops, "if '*' is present, must not specify other operations",
                                    "admissionregistration.OperationType"))
    for i, op in enumerate(ops):
        if op not in OPERATIONS:
            causes.append(not_supported(f"{path}.operations[{i}]", op, OPERATIONS))
    groups = rule.get("apiGroups") or []
    if not groups:
        causes.append(required(f"{path}.apiGroups"))
    if len(groups) > 1 and _has_wildcard(groups):
        causes.append(_invalid_list(f"{path}.apiGroups", groups, "if '*' is present, must not specify other API groups"))
    versions = rule.get("apiVersions") or []
    if not versions:
        causes.append(required(f"{path}.apiVersions"))
    if len(versions) > 1 and _has_wildcard(versions):
        causes.append(_invalid_list(f"{path}.apiVersions", versions,
                                    "if '*' is present, must not specify other API versions"))
    for i, ver in enumerate(versions):
        if not ver:
            causes.append(required(f"{path}.apiVersions[{i}]"))
    causes += validate_resources(rule.get("resources") or [], f"{path}.resources")
    scope = rule.get("scope")
    if scope is not None and scope not in SCOPES:
        causes.append(not_supported(f"{path}.scope", scope, SCOPES))
    return causes


def validate_url(path: str, url: str) -> list[Cause]:
    """webhook.ValidateWebhookURL with https forced."""
    try:
        u = urlsplit(url)
    except ValueError as e:
        return [required(path, f"url must be a valid URL: {e}")]
    causes: list[Cause] = []
    if u.scheme != "https":
        causes.append(invalid(path, u.scheme, "'https' is the only allowed URL scheme"))
    host = u.netloc.rpartition("@")[2]
    if not host:
        causes.append(invalid(path, host, "host must be specified"))
    if "@" in u.netloc:
        causes.append(invalid(path, u.netloc.rpartition("@")[0], "user information is not permitted in the URL"))
    if u.fragment:
        causes.append(invalid(path, u.fragment, "fragments are not permitted in the URL"))
    if u.query:
        causes.append(invalid(path, u.query, "query parameters are not permitted in the URL"))
    return causes


def validate_service(path: str, svc: Obj) -> list[Cause]:
    """webhook.ValidateWebhookService."""
    causes: list[Cause] = []
    if not svc.get("name"):
        causes.append(required(f"{path}.name", "service name is required"))
    if not svc.get("namespace"):
        causes.append(required(f"{path}.namespace", "service namespace is required"))
    port = svc.get("port", 443)
    if not (isinstance(port, int) and 1 <= port <= 65535):
        causes.append(invalid(f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"))
    url_path = svc.get("path")
    if url_path is None or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return causes + [invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        return causes + [invalid(f"{path}.path", url_path, "must start with a '/'")]
    check = url_path[1:]
    if check.endswith("/"):
        check = check[:-1]
    for i, step in enumerate(check.split("/")):
        if not step:
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for failure in v.is_dns1123_subdomain(step):
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}]: {failure}"))
    return causes


def validate_client_config(cc: Optional[Obj], path: str) -> list[Cause]:
    cc = cc or {}
    has_url, has_svc = cc.get("url") is not None, cc.get("service") is not None
    if has_url == has_svc:
        return [required(path, "exactly one of url or service is required")]
    if has_url:
        return validate_url(f"{path}.url", cc["url"])
    return validate_service(f"{path}.service", cc["service"])


def validate_review_versions(versions: list[str], path: str, *, require_recognized: bool) -> list[Cause]:
    if not versions:
        return [required(path, "must specify one of " + ", ".join(ACCEPTED_REVIEW_VERSIONS))]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, ver in enumerate(versions):
        if ver in seen:
            causes.append(invalid(f"{path}[{i}]", ver, "duplicate version"))
            continue
        seen.add(ver)
        causes += [invalid(f"{path}[{i}]", ver, e) for e in v.is_dns1035_label(ver)]
    if require_recognized and not any(ver in ACCEPTED_REVIEW_VERSIONS for ver in versions):
        causes.append(_invalid_list(path, versions, "must include at least one of "
                                    + ", ".join(ACCEPTED_REVIEW_VERSIONS)))
    return causes


WEBHOOK_CEL_VARIABLES = ("object", "oldObject", "request", "authorizer")


def validate_match_conditions(conds: list[Obj], path: str,
                              variables: tuple[str, ...] = WEBHOOK_CEL_VARIABLES) -> list[Cause]:
    """matchConditions: unique qualified names, expressions that compile."""
    causes: list[Cause] = []
    if len(conds) > MAX_MATCH_CONDITIONS:
        causes.append(Cause("FieldValueTooMany", path,
                            f"Too many: {len(conds)}: must have at most {MAX_MATCH_CONDITIONS} items"))
    seen: set[str] = set()
    for i, c in enumerate(conds):
        p = f"{path}[{i}]"
        name = c.get("name") or ""
        if not name:
            causes.append(required(f"{p}.name"))
        else:
            causes += [invalid(f"{p}.name", name, e) for e in v.is_qualified_name(name)]
            if name in seen:
                causes.append(duplicate(f"{p}.name", name))
            seen.add(name)
        expr = c.get("expression") or ""
        if not expr.strip():
            causes.append(required(f"{p}.expression"))
            continue
        err = cel.compile_error(expr, variables)
        if err:
            causes.append(invalid(f"{p}.expression", expr, err))
    return causes


def validate_webhook(hook: Obj, path: str, *, mutating: bool) -> list[Cause]:
    causes = validate_fully_qualified_name(f"{path}.name", hook.get("name") or "")
    for i, rule in enumerate(hook.get("rules") or []):
        causes += validate_rule(rule, f"{path}.rules[{i}]")
    fp = hook.get("failurePolicy")
    if fp is not None and fp not in FAILURE_POLICIES:
        causes.append(not_supported(f"{path}.failurePolicy", fp, FAILURE_POLICIES))
    mp = hook.get("matchPolicy")
    if mp is not None and mp not in MATCH_POLICIES:
        causes.append(not_supported(f"{path}.matchPolicy", mp, MATCH_POLICIES))
    se = hook.get("sideEffects")
    if se is None:
        causes.append(required(f"{path}.sideEffects", "must specify one of " + ", ".join(SIDE_EFFECTS_V1)))
    elif se not in SIDE_EFFECTS_V1:
        causes.append(not_supported(f"{path}.sideEffects", se, SIDE_EFFECTS_V1))
    ts = hook.get("timeoutSeconds")
    if ts is not None and not (1 <= ts <= 30):
        causes.append(invalid(f"{path}.timeoutSeconds", ts, "the timeout value must be between 1 and 30 seconds"))
    for sel in ("namespaceSelector", "objectSelector"):
        if hook.get(sel) is not None:
            causes += validate_label_selector(hook[sel], f"{path}.{sel}")
    causes += validate_client_config(hook.get("clientConfig"), f"{path}.clientConfig")
    if mutating:
        rp = hook.get("reinvocationPolicy")
        if rp is not None and rp not in REINVOCATION_POLICIES:
            causes.append(not_supported(f"{path}.reinvocationPolicy", rp, REINVOCATION_POLICIES))
    if hook.get("matchConditions"):
        causes += validate_match_conditions(hook["matchConditions"], f"{path}.matchConditions")
    return causes


def _unique_names(obj: Optional[Obj]) -> bool:
    names = [h.get("name") for h in (obj or {}).get("webhooks") or []]
    return len(names) == len(set(names))


def validate_configuration(obj: Obj, *, mutating: bool, old: Optional[Obj] = None) -> list[Cause]:
    """Every webhook; unique names (on update only if the old object had them, as upstream);
    a recognised AdmissionReview version (on update only if the old object had one)."""
    require_unique = old is None or _unique_names(old)
    require_recognized = old is None or all(
        any(ver in ACCEPTED_REVIEW_VERSIONS for ver in h.get("admissionReviewVersions") or [])
        for h in old.get("webhooks") or [])
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        path = f"webhooks[{i}]"
        causes += validate_webhook(hook, path, mutating=mutating)
        causes += validate_review_versions(hook.get("admissionReviewVersions") or [],
                                           f"{path}.admissionReviewVersions", require_recognized=require_recognized)
        name = hook.get("name") or ""
        if require_unique and name:
            if name in seen:
                causes.append(duplicate(f"{path}.name", name))
            seen.add(name)
    return causes


class WebhookConfigurationStrategy(Strategy):
    """What Mutating- and ValidatingWebhookConfigurations share (cluster-scoped, a list of
    webhooks, no spec); subclasses name the kind and set `mutating`."""

    group = "admissionregistration.k8s.io"
    version = "v1"
    namespaced = False
    categories = ("api-extensions",)
    mutating = False
    columns = (
        NAME_COLUMN,
        Column("Webhooks", "integer", "", "Webhooks indicates the number of webhooks included in this configuration"),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        default_configuration(obj, mutating=self.mutating)

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        # no spec: upstream moves generation when the webhooks change
        return new.get("webhooks") != old.get("webhooks")

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_configuration(obj, mutating=self.mutating)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_configuration(new, mutating=self.mutating, old=old)

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], len(obj.get("webhooks") or []), age_of(obj)]
