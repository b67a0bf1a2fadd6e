"""TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate filter the
node out; untolerated PreferNoSchedule taints lower its score."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, Status, default_normalize
from kybernetes.scheduler.plugins.helpers import find_untolerated, tolerates

NAME = "TaintToleration"


class TaintToleration:
    name = NAME

    def pre_filter(self, state, pod):
        snap = getattr(state, "snapshot", None)
        if snap is not None and not snap.any_taints:
            return Status(Code.SKIP)  # no node has a taint: nothing to check
        return None

    def filter(self, state, pod, ni):
        if not ni.taints:
            return None
        tols = (pod.get("spec") or {}).get("tolerations") or []
        t = find_untolerated(ni.taints, tols, ("NoSchedule", "NoExecute"))
        if t is None:
            return None
        return Status.unresolvable(f"node(s) had untolerated taint {{{t.get('key', '')}: {t.get('value', '')}}}")

    def pre_score(self, state, pod, nodes):
        snap = getattr(state, "snapshot", None)
        if snap is not None and not snap.any_taints:
            return Status(Code.SKIP)  # every node would score the same
        tols = (pod.get("spec") or {}).get("tolerations") or []
        state[NAME] = [t for t in tols if (t.get("effect") or "") in ("", "PreferNoSchedule")]
        return None

    def score_nodes(self, state, pod, nodes):
        return [self.score(state, pod, ni) if ni.taints else 0 for ni in nodes]

    def score(self, state, pod, ni):
        tols = state.get(NAME) or []
        n = 0
        for taint in ni.taints:
            if taint.get("effect") == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tols):
                n += 1
        return n

    def normalize_score(self, state, pod, scores):
        default_normalize(scores, reverse=True)
