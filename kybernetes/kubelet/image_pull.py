"""Image pulls at the kubelet, as upstream's image manager (pkg/kubelet/images) and
credential keyring (pkg/credentialprovider):

- the pod's imagePullSecrets (kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg)
  become a keyring; registry keys match an image by host[:port] (with `*` globs per
  host label) and an optional path prefix, most specific key first; every matching
  credential is tried in turn, anonymous only when none matches;
- a failed pull puts the pod's image (key `<pod uid>_<image>`) into an exponential
  back-off (10 s doubling to 300 s); a pull asked for while it lasts is refused with
  ImagePullBackOff instead of reaching the registry;
- pulls are serialised, one at a time per node (upstream's serializeImagePulls=true).

    puller = ImagePuller(cri)
    ref, reason, message = await puller.ensure_image(pod, container, secrets, event=...)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import json
import logging
import time
from typing import Any, Awaitable, Callable, Optional, Sequence, Union
from urllib.parse import urlsplit

from kybernetes.client import NotFound
from kybernetes.cri import CRIError

log = logging.getLogger("kybernetes.kubelet.images")
Obj = dict[str, Any]
EventFn = Callable[[str, str, str], None]  # (type, reason, message)

# container waiting reasons (pkg/kubelet/images/types.go)
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"
WAITING_REASONS = (ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF, ERR_IMAGE_NEVER_PULL, INVALID_IMAGE_NAME, "ImageInspectError")

DEFAULT_REGISTRY_HOST = "index.docker.io"
DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY = "kubernetes.io/dockerconfigjson", ".dockerconfigjson"
DOCKERCFG_TYPE, DOCKERCFG_KEY = "kubernetes.io/dockercfg", ".dockercfg"
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0


# ---------------------------------------------------------------- image names
class InvalidImageNameError(ValueError):
    pass


def parse_image_name(image: str) -> tuple[str, str, str]:
    """(repository with its registry, tag, digest) of an image reference, normalised as
    the docker reference library does: `busybox` is docker.io/library/busybox, tag
    `latest` when neither tag nor digest is given."""
    name, digest = image, ""
    if "@" in name:
        name, digest = name.split("@", 1)
    tag = ""
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
    if not name or not name.strip("/") or any(not part for part in name.split("/")):
        raise InvalidImageNameError(f'couldn\'t parse image name "{image}": invalid reference format')
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or (not any(ch in first for ch in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = "docker.io", name
    else:
        domain, rest = first, name[slash + 1:]
    if domain == DEFAULT_REGISTRY_HOST:
        domain = "docker.io"
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    if rest.lower() != rest:
        raise InvalidImageNameError(f'couldn\'t parse image name "{image}": invalid reference format: '
                                    f"repository name ({rest}) must be lowercase")
    if not tag and not digest:
        tag = "latest"
    return f"{domain}/{rest}", tag, digest


def apply_default_tag(image: str) -> str:
    """`image` with `:latest` appended when it names neither a tag nor a digest (the name
    itself stays short, as upstream keeps the CRI agnostic of default registries)."""
    _, tag, digest = parse_image_name(image)
    if not digest and tag and not image.endswith(":" + tag):
        return f"{image}:{tag}"
    return image


# ---------------------------------------------------------------- keyring
def _decode_auth_field(auth: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(auth, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"illegal base64 data in auth field: {e}") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("unable to parse auth field, must be formatted as base64(username:password)")
    return user, password.strip("\x00")


def docker_config_entry(raw: Any) -> Obj:
    """One registry's credentials from a docker config entry: username/password, or
    `auth` = base64(username:password) (which wins, as upstream's decoding does)."""
    if not isinstance(raw, dict):
        raise ValueError("docker config entry is not an object")
    out = {"username": str(raw.get("username") or ""), "password": str(raw.get("password") or ""),
           "email": str(raw.get("email") or "")}
    if raw.get("auth"):
        out["username"], out["password"] = _decode_auth_field(str(raw["auth"]))
    return out


def secret_docker_config(secret: Obj) -> Optional[dict[str, Obj]]:
    """The registry -> credentials map a pull secret holds, or None when the secret is of
    neither docker type (or its key is empty); ValueError when it does not parse."""
    data = secret.get("data") or {}
    stype = secret.get("type") or ""

    def payload(key: str) -> Optional[bytes]:
        raw = data.get(key)
        if not raw:
            return None
        try:
            return base64.b64decode(raw)
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"secret data {key} is not base64: {e}") from None
    try:
        if stype == DOCKER_CONFIG_JSON_TYPE and (body := payload(DOCKER_CONFIG_JSON_KEY)):
            doc = json.loads(body)
            auths = doc.get("auths") if isinstance(doc, dict) else None
            cfg = auths or {}
        elif stype == DOCKERCFG_TYPE and (body := payload(DOCKERCFG_KEY)):
            cfg = json.loads(body)
        else:
            return None
    except json.JSONDecodeError as e:
        raise ValueError(str(e)) from None
    if not isinstance(cfg, dict):
        raise ValueError("docker config is not an object")
    return {loc: docker_config_entry(ident) for loc, ident in cfg.items()}


def _schemeless(url: str):
    return urlsplit("https://" + url)


def _split_host(netloc: str) -> tuple[list[str], str]:
    """Host labels and port (Go's net.SplitHostPort; no port when it does not split)."""
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end > 0 and netloc[end + 1:end + 2] == ":":
            host, port = netloc[1:end], netloc[end + 2:]
    elif netloc.count(":") == 1:
        host, port = netloc.split(":")
    return host.split("."), port


def _glob_label(pattern: str, label: str) -> bool:
    # Go's filepath.Match negates a class with ^ as well as !
    return fnmatch.fnmatchcase(label, pattern.replace("[^", "[!"))


def urls_match(glob: str, target: str) -> bool:
    """Whether registry key `glob` (labels may be `*` globs, optional path prefix)
    matches the image repository `target`; both without scheme."""
    try:
        g, t = _schemeless(glob), _schemeless(target)
        g_labels, g_port = _split_host(g.netloc)
        t_labels, t_port = _split_host(t.netloc)
    except ValueError:
        return False
    if g_port != t_port or len(g_labels) != len(t_labels):
        return False
    if not t.path.startswith(g.path):
        return False
    return all(_glob_label(p, l) for p, l in zip(g_labels, t_labels))


def is_default_registry_match(image: str) -> bool:
    """Whether an image name pulls from Docker Hub."""
    parts = image.split("/", 1)
    if not parts[0]:
        return False
    if len(parts) == 1 or parts[0] in ("docker.io", DEFAULT_REGISTRY_HOST):
        return True
    return not any(ch in parts[0] for ch in ".:")


class DockerKeyring:
    """Registry credentials indexed by registry key (host[:port][/path]), looked up by
    image repository."""

    def __init__(self) -> None:
        self.creds: dict[str, list[Obj]] = {}
        self.index: list[str] = []

    def add(self, cfg: dict[str, Obj]) -> None:
        for loc, ident in cfg.items():
            value = loc if loc.startswith(("https://", "http://")) else "https://" + loc
            try:
                parsed = urlsplit(value)
                host = parsed.netloc
            except ValueError as e:
                log.warning("entry %r in a docker config is invalid (%s), ignoring", loc, e)
                continue
            path = parsed.path
            if path.startswith(("/v2/", "/v1/")):  # the docker client's API prefixes mean the host
                path = path[3:]
            key = host + path if path and path != "/" else host
            self.creds.setdefault(key, []).append(
                {"username": ident.get("username", ""), "password": ident.get("password", "")})
        # reverse order puts a longer key before its own prefix: quay.io/org before quay.io
        self.index = sorted(self.creds, reverse=True)

    def lookup(self, repo: str) -> list[Obj]:
        """Every credential whose key matches `repo`, most specific key first."""
        out = [c for k in self.index if urls_match(k, repo) for c in self.creds[k]]
        if not out and is_default_registry_match(repo):
            out = list(self.creds.get(DEFAULT_REGISTRY_HOST, []))
        return out


def make_keyring(secrets: Sequence[Obj]) -> DockerKeyring:
    """One keyring of all docker-type pull secrets, in the pod's order; ValueError when
    one of them does not parse."""
    ring = DockerKeyring()
    for s in secrets:
        cfg = secret_docker_config(s)
        if cfg:
            ring.add(cfg)
    return ring


async def pull_secrets(client, pod: Obj) -> tuple[list[Obj], list[str]]:
    """The pod's imagePullSecrets as Secrets (read through the node's own client, which
    the Node authorizer allows for secrets its pods name), and the names not readable."""
    secrets_api = client.resource("", "v1", "secrets", namespaced=True)
    ns = pod["metadata"]["namespace"]
    found, failed = [], []
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        name = (ref or {}).get("name") or ""
        if not name:
            continue
        try:
            found.append(await secrets_api.get(name, ns))
        except NotFound:
            failed.append(name)
        except Exception as e:  # noqa: BLE001 - forbidden, unreachable: the pull may still work
            log.info("pull secret %s/%s not read: %s", ns, name, e)
            failed.append(name)
    return found, failed


# ---------------------------------------------------------------- back-off
class Backoff:
    """Per-key exponential back-off as client-go's flowcontrol.Backoff: the first failure
    waits `initial`, each next one twice the last up to `max`; a key untouched for twice
    `max` starts over."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX,
                 clock: Callable[[], float] = time.monotonic):
        self.initial, self.max, self.clock = initial, maximum, clock
        self.entries: dict[str, tuple[float, float]] = {}  # key -> (duration, last update)

    def _expired(self, now: float, last: float) -> bool:
        return now - last > 2 * self.max

    def next(self, key: str) -> float:
        now = self.clock()
        e = self.entries.get(key)
        duration = self.initial if e is None or self._expired(now, e[1]) else min(e[0] * 2, self.max)
        self.entries[key] = (duration, now)
        return duration

    def in_backoff(self, key: str) -> bool:
        """Whether `key` failed less than its back-off ago (IsInBackOffSinceUpdate)."""
        e = self.entries.get(key)
        if e is None:
            return False
        now = self.clock()
        return not self._expired(now, e[1]) and now - e[1] < e[0]

    def remaining(self, key: str) -> float:
        e = self.entries.get(key)
        return 0.0 if e is None else max(0.0, e[1] + e[0] - self.clock())

    def reset(self, key: str) -> None:
        self.entries.pop(key, None)

    def gc(self) -> None:
        now = self.clock()
        for k in [k for k, (_, last) in self.entries.items() if self._expired(now, last)]:
            del self.entries[k]


# ---------------------------------------------------------------- puller
def go_duration_ms(seconds: float) -> str:
    """A duration truncated to milliseconds as Go prints it: 0s, 345ms, 1.234s, 1m2.5s."""
    ms = int(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, rem = divmod(ms, 60_000)
    secs = f"{rem // 1000}.{rem % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if minutes < 60:
        return f"{minutes}m{secs}" if minutes else secs
    h, m = divmod(minutes, 60)
    return f"{h}h{m}m{secs}"


def grpc_error_text(e: Exception) -> str:
    """A CRI error as a Go client prints a gRPC status: rpc error: code = NotFound desc = ..."""
    if isinstance(e, CRIError) and e.code is not None:
        code = {"OK": "OK", "CANCELLED": "Canceled"}.get(e.code.name) or \
            "".join(w.capitalize() for w in e.code.name.split("_"))
        return f"rpc error: code = {code} desc = {e.details}"
    return str(e)


class ImagePuller:
    """The node's image manager: ensure_image() for each container about to start."""

    def __init__(self, cri, *, backoff_initial: float = BACKOFF_INITIAL, backoff_max: float = BACKOFF_MAX,
                 serialize: bool = True, clock: Callable[[], float] = time.monotonic):
        self.cri = cri
        self.backoff = Backoff(backoff_initial, backoff_max, clock)
        self.prev_error: dict[str, str] = {}  # back-off key -> "<reason>: <message>" of its last failure
        self._serial = asyncio.Lock() if serialize else None

    @staticmethod
    def backoff_key(pod: Obj, image: str) -> str:
        return f"{pod['metadata'].get('uid', '')}_{image}"

    async def ensure_image(self, pod: Obj, container: Obj, policy: str,
                           secrets: Union[Sequence[Obj], Callable[[], Awaitable[Sequence[Obj]]]] = (),
                           sandbox_config=None, event: Optional[EventFn] = None) -> tuple[Optional[str], str, str]:
        """Make the container's image present per `policy` (Always, IfNotPresent, Never),
        with the pull `secrets` (or an async function giving them, called only when a pull
        is due).  Returns (image id, "", "") or (None, waiting reason, waiting message)."""
        emit: EventFn = event or (lambda t, r, m: None)
        requested = container.get("image", "")
        try:
            image = apply_default_tag(requested)
        except InvalidImageNameError as e:
            msg = f'Failed to apply default image tag "{requested}": {e}'
            emit("Warning", "InspectFailed", msg)
            return None, INVALID_IMAGE_NAME, msg
        if policy != "Always":
            try:
                have = await self.cri.image_status(image)
            except CRIError as e:
                msg = f'Failed to inspect image "": {grpc_error_text(e)}'
                emit("Warning", "InspectFailed", msg)
                return None, "ImageInspectError", msg
            if have is not None:
                emit("Normal", "Pulled", f'Container image "{requested}" already present on machine')
                return have.id, "", ""
            if policy == "Never":
                msg = f'Container image "{requested}" is not present with pull policy of Never'
                emit("Warning", ERR_IMAGE_NEVER_PULL, msg)
                return None, ERR_IMAGE_NEVER_PULL, msg
        key = self.backoff_key(pod, requested)
        if self.backoff.in_backoff(key):
            msg = f'Back-off pulling image "{requested}"'
            emit("Normal", "BackOff", msg)
            prev = self.prev_error.get(key)
            return None, IMAGE_PULL_BACKOFF, f"{msg}: {prev}" if prev else msg
        self.prev_error.pop(key, None)
        emit("Normal", "Pulling", f'Pulling image "{requested}"')
        t0 = time.monotonic()
        try:
            if callable(secrets):
                secrets = await secrets()
            ref, pulled_in, size = await self._pull(image, secrets, sandbox_config)
        except (CRIError, ValueError) as e:
            err = grpc_error_text(e) if isinstance(e, CRIError) else str(e)
            emit("Warning", "Failed", f'Failed to pull image "{requested}": {err}')
            self.backoff.next(key)
            self.prev_error[key] = f"{ERR_IMAGE_PULL}: {err}"
            return None, ERR_IMAGE_PULL, err
        total = time.monotonic() - t0
        emit("Normal", "Pulled", f'Successfully pulled image "{requested}" in {go_duration_ms(pulled_in)} '
                                 f"({go_duration_ms(total)} including waiting). Image size: {size} bytes.")
        self.backoff.reset(key)
        self.backoff.gc()
        for k in [k for k in self.prev_error if k not in self.backoff.entries]:  # pods long gone
            del self.prev_error[k]
        return ref, "", ""

    def retry_in(self, pod: Obj, container: Obj) -> float:
        """Seconds until the container's image may be pulled again (0 when not backing off)."""
        return self.backoff.remaining(self.backoff_key(pod, container.get("image", "")))

    async def _pull(self, image: str, secrets: Sequence[Obj], sandbox_config) -> tuple[str, float, int]:
        """Pull with each matching credential in turn (anonymously if none matches), one
        pull at a time on the node; (image id, seconds the pull itself took, size)."""
        repo, _, _ = parse_image_name(image)
        creds = make_keyring(secrets).lookup(repo)
        if self._serial is not None:
            async with self._serial:
                return await self._pull_with(image, creds, sandbox_config)
        return await self._pull_with(image, creds, sandbox_config)

    async def _pull_with(self, image: str, creds: list[Obj], sandbox_config) -> tuple[str, float, int]:
        t0 = time.monotonic()
        errors: list[str] = []
        for auth in creds or [None]:
            try:
                ref = await self.cri.pull_image(image, auth=auth, sandbox_config=sandbox_config)
            except CRIError as e:
                errors.append(grpc_error_text(e))
                continue
            took = time.monotonic() - t0
            size = 0
            try:
                img = await self.cri.image_status(ref or image)
                size = int(img.size) if img is not None else 0
            except CRIError:
                pass
            return ref, took, size
        # upstream's error aggregate: the one error, or all of them in brackets
        raise ValueError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
