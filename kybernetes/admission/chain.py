"""The built-in admission chain, in upstream's plugin order.

Mutating phase (each plugin's Admit), then — after field validation — the validating
phase (each plugin's Validate).  Upstream's order, of which these are implemented here:

  NamespaceLifecycle (in the REST handlers), LimitRanger, ServiceAccount,
  [NodeRestriction], PodSecurity, Priority, DefaultTolerationSeconds,
  DefaultStorageClass, StorageObjectInUseProtection, RuntimeClass, MutatingAdmissionWebhook, ValidatingAdmissionPolicy,
  ValidatingAdmissionWebhook, ResourceQuota
"""

from __future__ import annotations

from typing import Any

from kybernetes.admission.defaultstorageclass import DefaultStorageClass
from kybernetes.admission.defaulttolerationseconds import DefaultTolerationSeconds
from kybernetes.admission.limitranger import LimitRanger
from kybernetes.admission.policy import ValidatingAdmissionPolicy
from kybernetes.admission.priority import Priority, bootstrap_system_classes
from kybernetes.admission.resourcequota import ResourceQuota
from kybernetes.admission.runtimeclass import RuntimeClass
from kybernetes.admission.serviceaccount import ServiceAccount
from kybernetes.admission.storageobjectinuse import StorageObjectInUseProtection
from kybernetes.admission.webhooks import WebhookAdmission
from kybernetes.apiserver.objects import ObjectStore


def plugins(objects: ObjectStore, *, require_service_account: bool = True, podsecurity: Any = None,
            **sa_options: Any) -> list[Any]:
    from kybernetes.admission.podsecurity import PodSecurity

    return [
        LimitRanger(objects),
        ServiceAccount(objects, require_service_account=require_service_account, **sa_options),
        PodSecurity(objects, podsecurity),
        Priority(objects),
        DefaultTolerationSeconds(),
        DefaultStorageClass(objects),
        StorageObjectInUseProtection(),
        RuntimeClass(objects),
        ValidatingAdmissionPolicy(objects),  # validates before the validating webhooks, as upstream
        WebhookAdmission(objects),  # MutatingAdmissionWebhook (admit), ValidatingAdmissionWebhook (validate)
        ResourceQuota(objects),
    ]


async def install(handlers: Any, *, objects: ObjectStore, args: Any = None, bootstrap: bool = True) -> list[Any]:
    """Append the chain to `handlers.mutating` / `handlers.validating`; create the system
    priority classes.  With the controllers disabled (nothing creates `default` service
    accounts) a missing service account is not an error."""
    require_sa = not bool(getattr(args, "disable_controllers", False))
    from kybernetes.admission.podsecurity import Config

    config_file = getattr(args, "admission_control_config_file", "")
    chain = plugins(objects, require_service_account=require_sa,
                    podsecurity=Config.from_admission_config(config_file) if config_file else None)
    for p in chain:
        if hasattr(p, "admit"):
            handlers.mutating.append(p.admit)
    for p in chain:
        if hasattr(p, "validate"):
            handlers.validating.append(p.validate)
    if bootstrap:
        await bootstrap_system_classes(objects)
    return chain
