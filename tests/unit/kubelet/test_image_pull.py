"""Unit tests of the kubelet's image manager: image name normalisation, pull secret
parsing, keyring matching (upstream's credentialprovider rules), the pull back-off and
the puller's events and waiting reasons against a CRI double."""

from __future__ import annotations

import asyncio
import base64
import json

import grpc
import pytest

from kybernetes.cri import CRIError
from kybernetes.kubelet.image_pull import (Backoff, DockerKeyring, ImagePuller, apply_default_tag, go_duration_ms,
                                           make_keyring, parse_image_name, secret_docker_config, urls_match)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def dockerconfigjson(auths: dict, name="regcred") -> dict:
    return {"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(json.dumps({"auths": auths}))}}


def test_parse_image_name():
    assert parse_image_name("busybox") == ("docker.io/library/busybox", "latest", "")
    assert parse_image_name("kyb/app:1") == ("docker.io/kyb/app", "1", "")
    assert parse_image_name("index.docker.io/library/x") == ("docker.io/library/x", "latest", "")
    assert parse_image_name("127.0.0.1:5001/kyb/private:v1") == ("127.0.0.1:5001/kyb/private", "v1", "")
    assert parse_image_name("localhost/a/b@sha256:abc") == ("localhost/a/b", "", "sha256:abc")
    assert parse_image_name("quay.io/org/img:2@sha256:abc") == ("quay.io/org/img", "2", "sha256:abc")
    with pytest.raises(ValueError, match="must be lowercase"):
        parse_image_name("docker.io/Foo/bar")
    with pytest.raises(ValueError, match="invalid reference format"):
        parse_image_name("a//b")


def test_apply_default_tag():
    assert apply_default_tag("busybox") == "busybox:latest"
    assert apply_default_tag("127.0.0.1:5000/x") == "127.0.0.1:5000/x:latest"
    assert apply_default_tag("x:1") == "x:1"
    assert apply_default_tag("x@sha256:abc") == "x@sha256:abc"


def test_secret_parsing_dockerconfigjson_and_dockercfg():
    s = dockerconfigjson({"reg.example.com": {"username": "u", "password": "p"},
                          "https://other.example.com/v1/": {"auth": b64("alice:pa:ss")}})
    cfg = secret_docker_config(s)
    assert cfg["reg.example.com"]["username"] == "u" and cfg["reg.example.com"]["password"] == "p"
    # auth is base64(user:password), split at the first colon, and wins over the fields
    assert cfg["https://other.example.com/v1/"]["username"] == "alice"
    assert cfg["https://other.example.com/v1/"]["password"] == "pa:ss"
    old = {"type": "kubernetes.io/dockercfg",
           "data": {".dockercfg": b64(json.dumps({"r.io": {"username": "x", "password": "y"}}))}}
    assert secret_docker_config(old)["r.io"]["username"] == "x"
    # other types, or the key of the other type, hold no docker config
    assert secret_docker_config({"type": "Opaque", "data": {".dockerconfigjson": b64("{}")}}) is None
    assert secret_docker_config({"type": "kubernetes.io/dockercfg",
                                 "data": {".dockerconfigjson": b64("{}")}}) is None
    with pytest.raises(ValueError):
        secret_docker_config({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{no")}})
    with pytest.raises(ValueError, match="base64\\(username:password\\)"):
        secret_docker_config(dockerconfigjson({"r.io": {"auth": b64("nocolon")}}))


def test_urls_match():
    assert urls_match("reg.example.com", "reg.example.com/a/b")
    assert urls_match("*.example.com", "reg.example.com/a")
    assert not urls_match("*.example.com", "a.b.example.com/a")  # a glob spans one label
    assert not urls_match("*.example.com", "example.com/a")
    assert urls_match("reg.example.com/team", "reg.example.com/team/app")
    assert not urls_match("reg.example.com/team", "reg.example.com/other/app")
    assert urls_match("127.0.0.1:5001", "127.0.0.1:5001/kyb/private")
    assert not urls_match("127.0.0.1:5001", "127.0.0.1:5000/kyb/private")  # ports must agree
    assert not urls_match("127.0.0.1", "127.0.0.1:5001/kyb/private")


def test_keyring_most_specific_first_scheme_and_api_prefix_stripped():
    ring = DockerKeyring()
    ring.add({"https://quay.io": {"username": "host", "password": "1"},
              "quay.io/org": {"username": "org", "password": "2"},
              "http://quay.io/org/team/": {"username": "team", "password": "3"},
              "https://quay.io/v2/": {"username": "hostv2", "password": "4"}})
    assert ring.index == ["quay.io/org/team/", "quay.io/org", "quay.io"]
    users = [c["username"] for c in ring.lookup("quay.io/org/team/app")]
    assert users == ["team", "org", "host", "hostv2"]
    assert [c["username"] for c in ring.lookup("quay.io/else/app")] == ["host", "hostv2"]
    assert ring.lookup("docker.io/library/busybox") == []


def test_keyring_docker_hub_default():
    ring = make_keyring([dockerconfigjson({"https://index.docker.io/v1/": {"username": "hub", "password": "x"}})])
    assert [c["username"] for c in ring.lookup("docker.io/library/busybox")] == ["hub"]
    assert ring.lookup("quay.io/a/b") == []


def test_make_keyring_across_secrets_in_order():
    ring = make_keyring([dockerconfigjson({"r.io": {"username": "a", "password": "1"}}),
                         {"type": "Opaque", "data": {}},
                         dockerconfigjson({"r.io": {"username": "b", "password": "2"}})])
    assert [c["username"] for c in ring.lookup("r.io/x")] == ["a", "b"]


def test_backoff_doubles_caps_and_expires():
    now = [0.0]
    b = Backoff(10, 40, clock=lambda: now[0])
    assert not b.in_backoff("k")
    assert b.next("k") == 10
    assert b.in_backoff("k")
    now[0] = 9.9
    assert b.in_backoff("k")
    now[0] = 10.0
    assert not b.in_backoff("k")
    assert [b.next("k"), b.next("k"), b.next("k")] == [20, 40, 40]
    now[0] = 10.0 + 81  # untouched for more than twice the maximum: starts over
    assert not b.in_backoff("k")
    assert b.next("k") == 10
    now[0] = 1000
    b.gc()
    assert b.entries == {}


def test_go_duration_ms():
    assert go_duration_ms(0.0004) == "0s"
    assert go_duration_ms(0.345) == "345ms"
    assert go_duration_ms(1.2349) == "1.234s"
    assert go_duration_ms(2.0) == "2s"
    assert go_duration_ms(62.5) == "1m2.5s"


class FakeImage:
    def __init__(self, id_, size=1234):
        self.id, self.size = id_, size


class FakeCRI:
    """Images appear once pulled with the right credentials (or anonymously if open)."""

    def __init__(self, need=None):
        self.images: dict[str, FakeImage] = {}
        self.need = need  # (username, password) the registry wants, or None
        self.pulls: list[tuple[str, object]] = []
        self.fail: str = ""
        self.active = 0
        self.max_active = 0

    async def image_status(self, image):  # by name or id, as the CRI
        return self.images.get(image) or next((i for i in self.images.values() if i.id == image), None)

    async def pull_image(self, image, auth=None, sandbox_config=None):
        self.pulls.append((image, auth))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.01)
            if self.fail:
                raise CRIError("PullImage", grpc.StatusCode.NOT_FOUND, self.fail)
            if self.need and (auth is None or (auth["username"], auth["password"]) != self.need):
                raise CRIError("PullImage", grpc.StatusCode.UNKNOWN, "401 Unauthorized")
            self.images[image] = FakeImage("sha256:" + image.replace("/", "-"))
            return self.images[image].id
        finally:
            self.active -= 1


POD = {"metadata": {"uid": "u1", "name": "p", "namespace": "default"}}


async def test_puller_tries_each_credential_then_succeeds():
    cri = FakeCRI(need=("good", "pw"))
    events = []
    puller = ImagePuller(cri)
    secrets = [dockerconfigjson({"127.0.0.1:5001": {"username": "bad", "password": "x"}}),
               dockerconfigjson({"127.0.0.1:5001": {"username": "good", "password": "pw"}})]
    ref, reason, msg = await puller.ensure_image(POD, {"image": "127.0.0.1:5001/kyb/p:v1"}, "IfNotPresent",
                                                 secrets, event=lambda *e: events.append(e))
    assert ref == "sha256:127.0.0.1:5001-kyb-p:v1" and reason == ""
    assert [a["username"] for _, a in cri.pulls] == ["bad", "good"]
    assert events[0] == ("Normal", "Pulling", 'Pulling image "127.0.0.1:5001/kyb/p:v1"')
    assert events[1][:2] == ("Normal", "Pulled")
    assert events[1][2].startswith('Successfully pulled image "127.0.0.1:5001/kyb/p:v1" in ')
    assert "including waiting). Image size: 1234 bytes." in events[1][2]
    # present now: IfNotPresent does not pull again
    ref2, _, _ = await puller.ensure_image(POD, {"image": "127.0.0.1:5001/kyb/p:v1"}, "IfNotPresent", secrets,
                                           event=lambda *e: events.append(e))
    assert ref2 == ref and len(cri.pulls) == 2
    assert events[-1] == ("Normal", "Pulled", 'Container image "127.0.0.1:5001/kyb/p:v1" already present on machine')


async def test_puller_anonymous_without_matching_credentials_and_backoff():
    now = [100.0]
    cri = FakeCRI()
    cri.fail = "failed to resolve reference: not found"
    events = []
    puller = ImagePuller(cri, backoff_initial=10, clock=lambda: now[0])
    c = {"image": "127.0.0.1:5000/kyb/x:missing"}
    other = [dockerconfigjson({"elsewhere.io": {"username": "u", "password": "p"}})]
    ref, reason, msg = await puller.ensure_image(POD, c, "IfNotPresent", other, event=lambda *e: events.append(e))
    assert ref is None and reason == "ErrImagePull"
    assert msg == "rpc error: code = NotFound desc = failed to resolve reference: not found"
    assert cri.pulls == [("127.0.0.1:5000/kyb/x:missing", None)]
    assert events[-1] == ("Warning", "Failed", f'Failed to pull image "{c["image"]}": {msg}')
    # within the back-off: no pull, ImagePullBackOff with the last error
    now[0] += 5
    ref, reason, msg2 = await puller.ensure_image(POD, c, "IfNotPresent", other, event=lambda *e: events.append(e))
    assert (ref, reason) == (None, "ImagePullBackOff") and len(cri.pulls) == 1
    assert msg2 == f'Back-off pulling image "{c["image"]}": ErrImagePull: {msg}'
    assert events[-1] == ("Normal", "BackOff", f'Back-off pulling image "{c["image"]}"')
    assert puller.retry_in(POD, c) == pytest.approx(5)
    # the back-off is per pod: another pod pulls at once
    other_pod = {"metadata": {"uid": "u2"}}
    _, reason, _ = await puller.ensure_image(other_pod, c, "IfNotPresent", (), event=None)
    assert reason == "ErrImagePull" and len(cri.pulls) == 2
    # after it: pulled again; a success clears the back-off
    now[0] += 5
    cri.fail = ""
    ref, reason, _ = await puller.ensure_image(POD, c, "IfNotPresent", other, event=lambda *e: events.append(e))
    assert ref and reason == "" and len(cri.pulls) == 3
    assert puller.retry_in(POD, c) == 0


async def test_puller_never_policy_invalid_name_and_serialised_pulls():
    cri = FakeCRI()
    puller = ImagePuller(cri)
    ref, reason, msg = await puller.ensure_image(POD, {"image": "x:1"}, "Never")
    assert (ref, reason, msg) == (None, "ErrImageNeverPull", 'Container image "x:1" is not present with pull policy of Never')
    ref, reason, msg = await puller.ensure_image(POD, {"image": "Bad/Name"}, "IfNotPresent")
    assert reason == "InvalidImageName" and msg.startswith('Failed to apply default image tag "Bad/Name": ')
    # secrets given as a function are read only when a pull is due
    calls = []

    async def secrets():
        calls.append(1)
        return []
    results = await asyncio.gather(*(puller.ensure_image({"metadata": {"uid": f"p{i}"}}, {"image": f"img{i}:1"},
                                                         "IfNotPresent", secrets) for i in range(4)))
    assert all(r[0] for r in results) and len(calls) == 4
    assert cri.max_active == 1  # one pull at a time on the node
    parallel = FakeCRI()
    p2 = ImagePuller(parallel, serialize=False)
    await asyncio.gather(*(p2.ensure_image(POD, {"image": f"img{i}:1"}, "Always") for i in range(4)))
    assert parallel.max_active > 1


def test_grpc_error_text_as_go_prints_it():
    from kybernetes.kubelet.image_pull import grpc_error_text
    assert grpc_error_text(CRIError("PullImage", grpc.StatusCode.NOT_FOUND, "x")) == \
        "rpc error: code = NotFound desc = x"
    assert grpc_error_text(CRIError("PullImage", grpc.StatusCode.DEADLINE_EXCEEDED, "y")) == \
        "rpc error: code = DeadlineExceeded desc = y"
    assert grpc_error_text(CRIError("PullImage", grpc.StatusCode.CANCELLED, "z")) == \
        "rpc error: code = Canceled desc = z"
