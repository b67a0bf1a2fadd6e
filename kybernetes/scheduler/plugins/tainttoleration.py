"""TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate filter the
node out; untolerated PreferNoSchedule taints lower its score."""

from __future__ import annotations

from kybernetes.scheduler.framework import Status, default_normalize
from kybernetes.scheduler.plugins.helpers import find_untolerated, tolerates

NAME = "TaintToleration"


class TaintToleration:
    name = NAME

    def filter(self, state, pod, ni):
        tols = (pod.get("spec") or {}).get("tolerations") or []
        t = find_untolerated(ni.taints, tols, ("NoSchedule", "NoExecute"))
        if t is None:
            return None
        return Status.unresolvable(f"node(s) had untolerated taint {{{t.get('key', '')}: {t.get('value', '')}}}")

    def pre_score(self, state, pod, nodes):
        tols = (pod.get("spec") or {}).get("tolerations") or []
        state[NAME] = [t for t in tols if (t.get("effect") or "") in ("", "PreferNoSchedule")]
        return None

    def score(self, state, pod, ni):
        tols = state.get(NAME) or []
        n = 0
        for taint in ni.taints:
            if taint.get("effect") == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tols):
                n += 1
        return n

    def normalize_score(self, state, pod, scores):
        default_normalize(scores, reverse=True)
