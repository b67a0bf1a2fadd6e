"""Pod affinity terms as the scheduler matches them (upstream framework.AffinityTerm):
a label selector over pods, the namespaces it looks in, and a topology key.

A term with neither `namespaces` nor `namespaceSelector` looks in the owning pod's own
namespace; a `namespaceSelector` of {} means every namespace.  `matchLabelKeys` and
`mismatchLabelKeys` are folded into the selector with the owning pod's label values
(In / NotIn), which is what the API server does to the stored term upstream."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Optional

from kybernetes.api.selectors import IN, NOT_IN, NOTHING, LabelSelector, Requirement, SelectorError, from_label_selector

Obj = dict[str, Any]
NsLabels = Callable[[str], Mapping[str, str]]


def selector_with_keys(sel: Optional[Mapping[str, Any]], labels: Mapping[str, str],
                       match_keys: Any = (), mismatch_keys: Any = ()) -> LabelSelector:
    """The term's selector (None matches nothing) plus matchLabelKeys/mismatchLabelKeys."""
    try:
        base = from_label_selector(sel)
    except SelectorError:
        return NOTHING
    extra = [Requirement(k, IN, (labels[k],)) for k in match_keys or () if k in labels]
    extra += [Requirement(k, NOT_IN, (labels[k],)) for k in mismatch_keys or () if k in labels]
    if not extra or base.nothing:
        return base
    return LabelSelector((*base.requirements, *extra))


class AffinityTerm:
    """One PodAffinityTerm of a pod, parsed once (the owning pod's namespace and labels
    resolve the defaults)."""

    __slots__ = ("namespaces", "ns_selector", "selector", "topology_key", "weight", "key")

    def __init__(self, term: Mapping[str, Any], owner_ns: str, owner_labels: Mapping[str, str], weight: int = 0) -> None:
        self.namespaces = frozenset(term.get("namespaces") or ())
        ns_sel = term.get("namespaceSelector")
        if ns_sel is None:
            self.ns_selector: Optional[LabelSelector] = None
            if not self.namespaces:
                self.namespaces = frozenset((owner_ns,))
        else:
            try:
                self.ns_selector = from_label_selector(ns_sel)
            except SelectorError:
                self.ns_selector = NOTHING
        self.selector = selector_with_keys(term.get("labelSelector"), owner_labels,
                                           term.get("matchLabelKeys"), term.get("mismatchLabelKeys"))
        self.topology_key = term.get("topologyKey") or ""
        self.weight = weight
        # identical terms (the replicas of one workload) share one key in the cache's
        # indexes; a small int, so that memo lookups on the hot path hash cheaply
        self.key = _intern((self.namespaces, self.ns_selector, self.selector, self.topology_key))

    def matches(self, namespace: str, labels: Mapping[str, str], ns_labels: Optional[NsLabels]) -> bool:
        """Does a pod in `namespace` with `labels` fall under this term?"""
        if namespace not in self.namespaces:
            if self.ns_selector is None or self.ns_selector.nothing:
                return False
            if not self.ns_selector.empty() and not self.ns_selector.matches(ns_labels(namespace) if ns_labels else {}):
                return False
        return self.selector.matches(labels)


_KEYS: dict[tuple, int] = {}


def _intern(k: tuple) -> int:
    n = _KEYS.get(k)
    if n is None:
        if len(_KEYS) > 100000:  # bounded: old ids stay unique because the counter goes on
            _KEYS.clear()
        n = _KEYS[k] = next(_ids)
    return n


_ids = itertools.count(1)


def parse_terms(terms: Any, owner_ns: str, owner_labels: Mapping[str, str]) -> list[AffinityTerm]:
    return [AffinityTerm(t or {}, owner_ns, owner_labels) for t in terms or ()]


def parse_weighted(terms: Any, owner_ns: str, owner_labels: Mapping[str, str]) -> list[AffinityTerm]:
    out = []
    for wt in terms or ():
        w = int((wt or {}).get("weight") or 0)
        if w:
            out.append(AffinityTerm(wt.get("podAffinityTerm") or {}, owner_ns, owner_labels, w))
    return out
