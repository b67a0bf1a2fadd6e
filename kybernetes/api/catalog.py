"""The resource catalog: every served group/version/resource and its strategy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Optional

from kybernetes.registry.base import Strategy

# Preferred order of groups in discovery (upstream lists core first, then by priority).
_GROUP_ORDER = [
    "", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io",
    "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
    "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
]


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Catalog:
    """Look-ups over the served resources."""

    def __init__(self, strategies: Iterable[Strategy]) -> None:
        self.strategies = list(strategies)
        self._by_resource: dict[tuple[str, str, str], Strategy] = {}
        self._by_kind: dict[tuple[str, str, str], Strategy] = {}
        for s in self.strategies:
            self._by_resource[(s.group, s.version, s.resource)] = s
            self._by_kind[(s.group, s.version, s.kind)] = s

    def lookup(self, group: str, version: str, resource: str) -> Optional[Strategy]:
        return self._by_resource.get((group, version, resource))

    def by_kind(self, group: str, version: str, kind: str) -> Optional[Strategy]:
        return self._by_kind.get((group, version, kind))

    def by_api_version_kind(self, api_version: str, kind: str) -> Optional[Strategy]:
        group, _, version = api_version.rpartition("/")
        return self._by_kind.get((group, version, kind))

    @cached_property
    def groups(self) -> dict[str, list[str]]:
        """group -> versions (preferred first), in discovery order."""
        found: dict[str, list[str]] = {}
        for s in self.strategies:
            vs = found.setdefault(s.group, [])
            if s.version not in vs:
                vs.append(s.version)
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], 100), kv[0])))

    def resources_in(self, group: str, version: str) -> list[Strategy]:
        return [s for s in self.strategies if s.group == group and s.version == version]


_default: Optional[Catalog] = None


def default_catalog() -> Catalog:
    """The catalog of every built-in resource (built once)."""
    global _default
    if _default is None:
        from kybernetes.registry import all_strategies

        _default = Catalog(all_strategies())
    return _default
