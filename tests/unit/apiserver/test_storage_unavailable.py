"""The Status an unreachable datastore produces (503 nothing changed / 504 may land)."""

from __future__ import annotations

from kybernetes.apiserver import errors


def test_read_or_unsent_write_is_503_with_retry_after():
    e = errors.storage_unavailable("get", "configmaps", "", maybe_applied=False)
    assert (e.code, e.reason, e.headers) == (503, "ServiceUnavailable", {"Retry-After": "1"})
    st = e.status()
    assert st["message"] == ("The get operation against configmaps could not be completed at this time, "
                             "please try again.")
    assert st["details"] == {"name": "get", "kind": "configmaps", "retryAfterSeconds": 1}


def test_write_that_may_land_is_504_timeout():
    e = errors.storage_unavailable("create", "deployments", "apps", maybe_applied=True)
    assert (e.code, e.reason, e.headers["Retry-After"]) == (504, "Timeout", "1")
    assert e.status()["details"]["group"] == "apps"
    assert "deployments.apps" in e.message
