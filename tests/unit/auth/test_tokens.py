"""kybernetes.auth.tokens: bearer headers, static token file, bootstrap tokens, unions."""

import base64
import datetime as dt

import pytest

from kybernetes.auth import tokens as tk
from kybernetes.auth.authorizer import UserInfo


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "header,want",
    [
        (None, (None, "")),
        ("", (None, "")),
        ("Bearer abc", ("abc", "")),
        ("bearer abc", ("abc", "")),
        ("  Bearer abc  ", ("abc", "")),
        ("Basic abc", (None, "")),
        ("Bearer", (None, "")),
        ("Bearer abc def", ("abc", "")),
        (
            "Bearer  abc",
            (None, "the provided Authorization header contains extra space before the bearer token, and is ignored"),
        ),
    ],
)
def test_bearer_token(header, want):
    assert tk.bearer_token(header) == want


def test_websocket_bearer_token():
    enc = base64.urlsafe_b64encode(b"tok.en").decode().rstrip("=")
    assert tk.websocket_bearer_token(f"v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.{enc}") == ("tok.en", "")
    assert tk.websocket_bearer_token(None) == (None, "")
    assert tk.websocket_bearer_token("v4.channel.k8s.io") == (None, "")
    p = f"base64url.bearer.authorization.k8s.io.{enc}"
    assert tk.websocket_bearer_token(f"{p},{p}")[1] == "multiple base64.bearer.authorization tokens specified"
    assert tk.websocket_bearer_token("base64url.bearer.authorization.k8s.io.!!!")[1] == (
        "invalid base64.bearer.authorization token encoding"
    )
    assert tk.websocket_bearer_token("base64url.bearer.authorization.k8s.io.")[1] == "invalid base64.bearer.authorization token"


def test_with_authenticated_group():
    u = tk.with_authenticated_group(UserInfo("a", ("g",), "1", {"k": ["v"]}))
    assert u == UserInfo("a", ("g", "system:authenticated"), "1", {"k": ["v"]})
    assert tk.with_authenticated_group(u) is u
    anon = UserInfo("system:anonymous", ("system:unauthenticated",))
    assert tk.with_authenticated_group(anon) is anon


# ---------------------------------------------------------------- token file


async def test_token_file(tmp_path):
    p = tmp_path / "tokens.csv"
    p.write_text('t1,alice,u1,"g1,g2"\nt2,bob,u2\n\n,empty,u3\nt1,again,u4\n')
    a = tk.TokenFileAuthenticator.from_file(str(p))
    assert len(a) == 2
    r = await a.authenticate_token("t1")
    assert r.ok and r.user == UserInfo("again", (), "u4", {})  # the later duplicate wins, as upstream
    r = await a.authenticate_token("t2")
    assert r.user == UserInfo("bob", (), "u2", {})
    assert await a.authenticate_token("nope") == tk.AuthResult(None)
    assert a.warnings == [
        f"empty token has been found in token file '{p}', record number '3'",
        f"duplicate token has been found in token file '{p}', record number '4'",
    ]
    b = tk.TokenFileAuthenticator.from_csv('t1,alice,u1,"g1,g2"\n')
    assert (await b.authenticate_token("t1")).user.groups == ("g1", "g2")


def test_token_file_errors(tmp_path):
    with pytest.raises(tk.TokenFileError, match=r"token file 'f' must have at least 3 columns \(token, user name, user uid\), found 2"):
        tk.TokenFileAuthenticator.from_csv("a,b\n", "f")
    with pytest.raises(tk.TokenFileError, match="open"):
        tk.TokenFileAuthenticator.from_file(str(tmp_path / "missing.csv"))
    with pytest.raises(tk.TokenFileError, match="parse error"):
        tk.TokenFileAuthenticator.from_csv('a,"b\n', "f")


# ---------------------------------------------------------------- bootstrap tokens

TOKEN = "abcdef.0123456789abcdef"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def secrets_of(*objs):
    store = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}

    async def get(ns, name):
        return store.get((ns, name))

    return get


def auth(*objs):
    return tk.BootstrapTokenAuthenticator(secrets_of(*objs), now=lambda: NOW)


def good(**kw):
    return tk.bootstrap_token_secret(TOKEN, **kw)


def test_parse_and_generate():
    assert tk.parse_bootstrap_token(TOKEN) == ("abcdef", "0123456789abcdef")
    for bad in ["abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abcdef.0123456789abcdef.x"]:
        assert tk.parse_bootstrap_token(bad) is None
    for _ in range(5):
        assert tk.parse_bootstrap_token(tk.generate_bootstrap_token())


def test_bootstrap_token_secret():
    s = good(expiration=dt.datetime(2031, 2, 3, 4, 5, 6), description="join")
    assert s["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert s["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
    assert data == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:kyb:default-node-token",
        "expiration": "2031-02-03T04:05:06Z",
        "description": "join",
    }
    with pytest.raises(ValueError):
        tk.bootstrap_token_secret("bad")
    assert "auth-extra-groups" not in tk.bootstrap_token_secret(TOKEN, groups=())["data"]


async def test_bootstrap_token_authenticates():
    r = await auth(good()).authenticate_token(TOKEN)
    assert r.user == UserInfo(
        "system:bootstrap:abcdef", ("system:bootstrappers", "system:bootstrappers:kyb:default-node-token"), "", {}
    )
    r = await auth(good(groups=("system:bootstrappers:b", "system:bootstrappers:a", "system:bootstrappers:a"))).authenticate_token(TOKEN)
    assert r.user.groups == ("system:bootstrappers", "system:bootstrappers:a", "system:bootstrappers:b")
    r = await auth(good(groups=())).authenticate_token(TOKEN)
    assert r.user.groups == ("system:bootstrappers",)
    # stringData is honoured too, and a future expiry is fine
    s = good(expiration=NOW + dt.timedelta(hours=1))
    s["stringData"] = {}
    assert (await auth(s).authenticate_token(TOKEN)).ok


def mutate(fn):
    s = good()
    fn(s)
    return s


def set_data(key, value):
    def f(s):
        if value is None:
            s["data"].pop(key, None)
        else:
            s["data"][key] = base64.b64encode(value.encode()).decode()

    return f


P = "Bootstrap secret kube-system/bootstrap-token-abcdef matching bearer token "


@pytest.mark.parametrize(
    "secret,reason",
    [
        (None, "No secret of name bootstrap-token-abcdef to match bootstrap bearer token"),
        (mutate(lambda s: s["metadata"].update(deletionTimestamp="2029-01-01T00:00:00Z")), P + "is deleted and awaiting removal"),
        (mutate(lambda s: s.update(type="Opaque")), P + "has invalid type, expected bootstrap.kubernetes.io/token."),
        (mutate(lambda s: s.update(data={})), P + "has invalid type, expected bootstrap.kubernetes.io/token."),
        (mutate(set_data("token-secret", "fffffffffffffff0")), P + "has invalid value for key token-secret."),
        (mutate(lambda s: s["data"].update({"token-secret": "%%%"})), P + "has invalid value for key token-secret."),
        (mutate(set_data("token-id", "zzzzzz")), P + "has invalid value for key token-id."),
        (
            mutate(set_data("expiration", "2029-12-31T23:59:59Z")),
            "Expired bootstrap token in kube-system/bootstrap-token-abcdef Secret: 2029-12-31T23:59:59Z",
        ),
        (
            mutate(set_data("expiration", "tomorrow")),
            "Unparseable expiration time (tomorrow) in kube-system/bootstrap-token-abcdef Secret. Treating as expired.",
        ),
        (
            mutate(set_data("expiration", "2031-01-01T00:00:00")),
            "Unparseable expiration time (2031-01-01T00:00:00) in kube-system/bootstrap-token-abcdef Secret. Treating as expired.",
        ),
        (mutate(set_data("usage-bootstrap-authentication", None)), P + "not marked usage-bootstrap-authentication=true."),
        (
            mutate(set_data("auth-extra-groups", "system:bootstrappers:ok,system:masters")),
            P + 'has invalid value for key auth-extra-groups: bootstrap group "system:masters" is invalid '
            r"(must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z).",
        ),
        (
            mutate(set_data("auth-extra-groups", "system:bootstrappers:")),
            P + 'has invalid value for key auth-extra-groups: bootstrap group "system:bootstrappers:" is invalid '
            r"(must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z).",
        ),
    ],
)
async def test_bootstrap_token_refusals(secret, reason):
    a = auth(secret) if secret is not None else auth()
    assert await a.authenticate_token(TOKEN) == tk.AuthResult(None, reason)


async def test_bootstrap_ignores_other_tokens():
    assert await auth(good()).authenticate_token("not-a-bootstrap-token") == tk.AuthResult(None)


async def test_bootstrap_raw_bytes_data():
    s = good()
    s["data"] = {k: base64.b64decode(v) for k, v in s["data"].items()}
    assert (await auth(s).authenticate_token(TOKEN)).ok


async def test_bootstrap_default_clock():
    a = tk.BootstrapTokenAuthenticator(secrets_of(good(expiration=dt.datetime(2000, 1, 1))))
    assert not (await a.authenticate_token(TOKEN)).ok


# ---------------------------------------------------------------- union


async def test_union():
    f = tk.TokenFileAuthenticator.from_csv("t1,alice,u1\n")
    b = auth(good())
    u = tk.UnionTokenAuthenticator([f, b])
    assert (await u.authenticate_token("t1")).user.name == "alice"
    assert (await u.authenticate_token(TOKEN)).user.name == "system:bootstrap:abcdef"
    assert await u.authenticate_token("zzz") == tk.AuthResult(None, "invalid bearer token")
    r = await u.authenticate_token("zzzzzz.0123456789abcdef")
    assert r.reason == "No secret of name bootstrap-token-zzzzzz to match bootstrap bearer token"

    class Failing:
        def __init__(self, reason):
            self.reason = reason

        async def authenticate_token(self, token):
            return tk.AuthResult(None, self.reason)

    r = await tk.UnionTokenAuthenticator([Failing("a"), Failing("b"), Failing("a")]).authenticate_token("x")
    assert r.reason == "[a, b]"


async def test_union_audiences_and_token_check():
    class AudAware:
        accepts_audiences = True

        async def authenticate_token(self, token, audiences=None):
            AudAware.got = audiences
            if token == "sa":
                return tk.AuthResult(UserInfo("system:serviceaccount:a:b", ("system:serviceaccounts",)), "", ("vault",))
            return tk.AuthResult(None, "sa says no")

    f = tk.TokenFileAuthenticator.from_csv("t1,alice,u1,g\n")
    u = tk.UnionTokenAuthenticator([f, AudAware()], api_audiences=["api"])
    r = await u.authenticate_token("t1")
    assert r.user.name == "alice" and r.audiences == ("api",)
    r = await u.authenticate_token("t1", audiences=["api", "x"])
    assert r.audiences == ("api",)
    # a static token is not valid for other audiences
    r = await u.authenticate_token("t1", audiences=["vault"])
    assert r == tk.AuthResult(None, "sa says no") and AudAware.got == ["vault"]
    r = await u.authenticate_token("sa", audiences=["vault"])
    assert r.audiences == ("vault",)

    check = tk.as_token_check(u)
    user, auds, err = await check("t1", [])
    assert user == UserInfo("alice", ("g", "system:authenticated"), "u1", {}) and auds == ["api"] and err == ""
    assert await check("zz", ["vault"]) == (None, [], "sa says no")
    plain = tk.as_token_check(f)
    assert (await plain("t1", []))[0].name == "alice"
    assert await plain("nope", []) == (None, [], "invalid bearer token")
