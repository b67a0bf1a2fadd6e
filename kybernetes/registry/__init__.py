"""registry: one module per served resource (upstream pkg/registry).

`all_strategies()` lists them, in a stable order (discovery order within a group).
"""

from __future__ import annotations

from functools import cache

from kybernetes.registry.base import Strategy


@cache
def _strategies() -> tuple[Strategy, ...]:
    # Imported here, explicitly, so importing `kybernetes.registry.base` stays light
    # and the order never depends on the file system.
    from kybernetes.registry.core import (
        namespaces as core_namespaces,
        pods as core_pods,
        bindings as core_bindings,
        services as core_services,
        endpoints as core_endpoints,
        configmaps as core_configmaps,
        secrets as core_secrets,
        serviceaccounts as core_serviceaccounts,
        events as core_events,
        nodes as core_nodes,
        persistentvolumes as core_persistentvolumes,
        persistentvolumeclaims as core_persistentvolumeclaims,
        limitranges as core_limitranges,
        resourcequotas as core_resourcequotas,
        replicationcontrollers as core_replicationcontrollers,
        podtemplates as core_podtemplates,
    )
    from kybernetes.registry.apps import (
        deployments as apps_deployments,
        replicasets as apps_replicasets,
        statefulsets as apps_statefulsets,
        daemonsets as apps_daemonsets,
        controllerrevisions as apps_controllerrevisions,
    )
    from kybernetes.registry.batch import (
        jobs as batch_jobs,
        cronjobs as batch_cronjobs,
    )
    from kybernetes.registry.autoscaling import (
        horizontalpodautoscalers as autoscaling_horizontalpodautoscalers,
    )
    from kybernetes.registry.coordination import (
        leases as coordination_leases,
    )
    from kybernetes.registry.events import (
        events as events_events,
    )
    from kybernetes.registry.rbac import (
        roles as rbac_roles,
        rolebindings as rbac_rolebindings,
        clusterroles as rbac_clusterroles,
        clusterrolebindings as rbac_clusterrolebindings,
    )
    from kybernetes.registry.networking import (
        networkpolicies as networking_networkpolicies,
        ingresses as networking_ingresses,
        ingressclasses as networking_ingressclasses,
        ipaddresses as networking_ipaddresses,
        servicecidrs as networking_servicecidrs,
    )
    from kybernetes.registry.storage import (
        storageclasses as storage_storageclasses,
        volumeattachments as storage_volumeattachments,
        csidrivers as storage_csidrivers,
        csinodes as storage_csinodes,
        csistoragecapacities as storage_csistoragecapacities,
    )
    from kybernetes.registry.discovery import (
        endpointslices as discovery_endpointslices,
    )
    from kybernetes.registry.policy import (
        poddisruptionbudgets as policy_poddisruptionbudgets,
    )
    from kybernetes.registry.scheduling import (
        priorityclasses as scheduling_priorityclasses,
    )
    from kybernetes.registry.node import (
        runtimeclasses as node_runtimeclasses,
    )
    from kybernetes.registry.certificates import (
        certificatesigningrequests as certificates_certificatesigningrequests,
    )
    from kybernetes.registry.admissionregistration import (
        mutatingwebhookconfigurations as admreg_mutating,
        validatingwebhookconfigurations as admreg_validating,
        validatingadmissionpolicies as admreg_vap,
        validatingadmissionpolicybindings as admreg_vapb,
    )
    from kybernetes.registry.authentication import reviews as authn_reviews
    from kybernetes.registry.authorization import reviews as authz_reviews

    return (
        core_namespaces.NamespaceStrategy(),
        core_pods.PodStrategy(),
        core_bindings.BindingStrategy(),
        core_services.ServiceStrategy(),
        core_endpoints.EndpointsStrategy(),
        core_configmaps.ConfigMapStrategy(),
        core_secrets.SecretStrategy(),
        core_serviceaccounts.ServiceAccountStrategy(),
        core_events.EventStrategy(),
        core_nodes.NodeStrategy(),
        core_persistentvolumes.PersistentVolumeStrategy(),
        core_persistentvolumeclaims.PersistentVolumeClaimStrategy(),
        core_limitranges.LimitRangeStrategy(),
        core_resourcequotas.ResourceQuotaStrategy(),
        core_replicationcontrollers.ReplicationControllerStrategy(),
        core_podtemplates.PodTemplateStrategy(),
        apps_deployments.DeploymentStrategy(),
        apps_replicasets.ReplicaSetStrategy(),
        apps_statefulsets.StatefulSetStrategy(),
        apps_daemonsets.DaemonSetStrategy(),
        apps_controllerrevisions.ControllerRevisionStrategy(),
        batch_jobs.JobStrategy(),
        batch_cronjobs.CronJobStrategy(),
        autoscaling_horizontalpodautoscalers.HorizontalPodAutoscalerStrategy(),
        coordination_leases.LeaseStrategy(),
        events_events.EventStrategy(),
        rbac_roles.RoleStrategy(),
        rbac_rolebindings.RoleBindingStrategy(),
        rbac_clusterroles.ClusterRoleStrategy(),
        rbac_clusterrolebindings.ClusterRoleBindingStrategy(),
        networking_networkpolicies.NetworkPolicyStrategy(),
        networking_ingresses.IngressStrategy(),
        networking_ingressclasses.IngressClassStrategy(),
        networking_ipaddresses.IPAddressStrategy(),
        networking_servicecidrs.ServiceCIDRStrategy(),
        storage_storageclasses.StorageClassStrategy(),
        storage_volumeattachments.VolumeAttachmentStrategy(),
        storage_csidrivers.CSIDriverStrategy(),
        storage_csinodes.CSINodeStrategy(),
        storage_csistoragecapacities.CSIStorageCapacityStrategy(),
        discovery_endpointslices.EndpointSliceStrategy(),
        policy_poddisruptionbudgets.PodDisruptionBudgetStrategy(),
        scheduling_priorityclasses.PriorityClassStrategy(),
        node_runtimeclasses.RuntimeClassStrategy(),
        certificates_certificatesigningrequests.CertificateSigningRequestStrategy(),
        admreg_validating.ValidatingWebhookConfigurationStrategy(),
        admreg_mutating.MutatingWebhookConfigurationStrategy(),
        admreg_vap.ValidatingAdmissionPolicyStrategy(),
        admreg_vapb.ValidatingAdmissionPolicyBindingStrategy(),
        authn_reviews.TokenReviewStrategy(),
        authn_reviews.SelfSubjectReviewStrategy(),
        authz_reviews.LocalSubjectAccessReviewStrategy(),
        authz_reviews.SelfSubjectAccessReviewStrategy(),
        authz_reviews.SelfSubjectRulesReviewStrategy(),
        authz_reviews.SubjectAccessReviewStrategy(),
    )


def all_strategies() -> list[Strategy]:
    """Every built-in resource's strategy (the same instances on every call)."""
    return list(_strategies())
