"""The impersonation filter's header parsing and identity building (no server)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kybernetes.apiserver import errors
from kybernetes.apiserver.filters.impersonation import (Wanted, _attributes, impersonated_user, requested,
                                                        split_service_account)


def hdrs(*pairs: tuple[str, str]) -> CIMultiDictProxy:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_no_headers_means_no_impersonation():
    assert requested(hdrs(("Authorization", "Bearer x"))) == []


def test_user_groups_extras_uid_in_upstream_order():
    w = requested(hdrs(("Impersonate-Uid", "u-1"), ("Impersonate-User", "bob"), ("Impersonate-Group", "a"),
                       ("impersonate-group", "b"), ("Impersonate-Extra-Scopes", "view"),
                       ("impersonate-extra-scopes", "edit"), ("Impersonate-Extra-Acme.com%2Fteam", "x")))
    assert [x.kind for x in w] == ["User", "Group", "Group", "UserExtra", "UserExtra", "UserExtra", "UID"]
    assert [x.name for x in w if x.kind == "Group"] == ["a", "b"]
    extras = [(x.field_path, x.name) for x in w if x.kind == "UserExtra"]
    assert extras == [("scopes", "view"), ("scopes", "edit"), ("acme.com/team", "x")]


def test_malformed_percent_escape_keeps_the_key():
    w = requested(hdrs(("Impersonate-User", "bob"), ("Impersonate-Extra-a%zzb", "v")))
    assert w[1].field_path == "a%zzb"


def test_groups_without_user_is_bad_request():
    with pytest.raises(errors.APIError) as e:
        requested(hdrs(("Impersonate-Group", "g1")))
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert e.value.message == "requested [{Group  g1    }] without impersonating a user"
    with pytest.raises(errors.APIError) as e:
        requested(hdrs(("Impersonate-Uid", "u")))
    assert e.value.message == "requested [{UID  u  authentication.k8s.io/v1  }] without impersonating a user"


def test_service_account_users():
    assert split_service_account("system:serviceaccount:ns:bot") == ("ns", "bot")
    for bad in ("system:serviceaccount:ns", "system:serviceaccount:ns:a:b", "system:serviceaccount::bot",
                "system:serviceaccount:NS:bot", "bob"):
        assert split_service_account(bad) is None
    w = requested(hdrs(("Impersonate-User", "system:serviceaccount:ns:bot")))
    assert w == [Wanted("ServiceAccount", "bot", namespace="ns")]
    a = _attributes(w[0])
    assert (a["group"], a["resource"], a["namespace"], a["name"]) == ("", "serviceaccounts", "ns", "bot")
    u = impersonated_user(w, groups_specified=False)
    assert u.name == "system:serviceaccount:ns:bot"
    assert u.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")


def test_attributes_per_kind():
    w = requested(hdrs(("Impersonate-User", "bob"), ("Impersonate-Group", "g"), ("Impersonate-Extra-k", "v"),
                       ("Impersonate-Uid", "1")))
    got = [(a["group"], a["resource"], a["subresource"], a["name"]) for a in map(_attributes, w)]
    assert got == [("", "users", "", "bob"), ("", "groups", "", "g"),
                   ("authentication.k8s.io", "userextras", "k", "v"), ("authentication.k8s.io", "uids", "", "1")]
    assert all(a["verb"] == "impersonate" for a in map(_attributes, w))


def test_authenticated_group_rules():
    u = impersonated_user(requested(hdrs(("Impersonate-User", "bob"), ("Impersonate-Group", "dev"))), True)
    assert u.groups == ("dev", "system:authenticated")
    u = impersonated_user(requested(hdrs(("Impersonate-User", "bob"),
                                         ("Impersonate-Group", "system:unauthenticated"))), True)
    assert u.groups == ("system:unauthenticated",)
    u = impersonated_user(requested(hdrs(("Impersonate-User", "system:anonymous"))), False)
    assert u.groups == ("system:unauthenticated",)
    u = impersonated_user(requested(hdrs(("Impersonate-User", "bob"), ("Impersonate-Uid", "42"),
                                         ("Impersonate-Extra-scopes", "a"))), False)
    assert (u.uid, u.extra) == ("42", {"scopes": ("a",)})
